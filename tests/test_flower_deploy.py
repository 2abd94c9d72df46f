"""Tests of the deployable Flower app: partitions, the app project, and a deployment.

The deployment tests start a SuperLink and three SuperNodes on 127.0.0.1
(``--insecure``, free ports), each SuperNode reading its own partition file, run
skmoe's app with ``flwr run`` to the end, and compare the model the ServerApp saved
with ``DDOMEClassifier.fit`` in one process on the same partitions. They need flwr (the
``federated`` extra) and are skipped without it; CI runs them in a separate step that
fails when they are skipped.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skmoe
from skmoe.federated import DDOMEClassifier, flower_app_path, load_partition
from skmoe.federated._deploy import ESTIMATOR_KEYS, flower_app_config

N_CLIENTS = 3
# small and few rounds: every message costs a ClientApp process on its SuperNode
RUN_PARAMS = {
    "n-experts": 3,
    "n-rounds": 2,
    "clients-per-round": 3,
    "local-epochs": 1,
    "random-state": 0,
}


# ------------------------------------------------------------- partitions and app
def test_partition_formats_give_the_same_data(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((6, 3))
    y = np.array([2, 0, 1, 2, 2, 0])
    np.savez(tmp_path / "part.npz", X=X, y=y)
    with open(tmp_path / "part.csv", "w") as file:
        file.write("a,label,b,c\n")
        for row, label in zip(X, y, strict=True):
            a, b, c = (repr(float(v)) for v in row)
            file.write(f"{a},{label},{b},{c}\n")
    for path, label in ((tmp_path / "part.npz", "y"), (tmp_path / "part.csv", "label")):
        X_read, y_read = load_partition(path, label=label)
        np.testing.assert_array_equal(X_read, X)
        np.testing.assert_array_equal(y_read, y)
        assert y_read.dtype.kind == "i"


def test_csv_labels_may_be_strings_and_errors_name_the_problem(tmp_path):
    path = tmp_path / "owner.csv"
    path.write_text("x1,x2,species\n1.5,2,Adelie\n0,1,Gentoo\n")
    X, y = load_partition(path, label="species")
    assert X.tolist() == [[1.5, 2.0], [0.0, 1.0]]
    assert y.tolist() == ["Adelie", "Gentoo"]
    with pytest.raises(ValueError, match="no label column 'y'"):
        load_partition(path)
    with pytest.raises(ValueError, match="Unknown partition format '.txt'"):
        (tmp_path / "owner.txt").write_text("1")
        load_partition(tmp_path / "owner.txt")
    with pytest.raises(FileNotFoundError, match="No partition file"):
        load_partition(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", X=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"lacks the arrays \['y'\]"):
        load_partition(tmp_path / "bad.npz")


def test_parquet_partition(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet partitions need pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"x1": [0.5, 1.0], "x2": [2.0, 3.0], "y": ["a", "b"]})
    pq.write_table(table, tmp_path / "part.parquet")
    X, y = load_partition(tmp_path / "part.parquet")
    assert X.tolist() == [[0.5, 2.0], [1.0, 3.0]]
    assert y.tolist() == ["a", "b"] and y.dtype.kind == "U"


def test_parquet_without_pyarrow_is_a_clear_import_error(tmp_path, monkeypatch):
    (tmp_path / "part.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        load_partition(tmp_path / "part.parquet")


def test_a_node_refuses_a_common_expert_other_than_the_servers(tmp_path):
    from skmoe.federated._deploy import file_digest, load_verified

    joblib.dump(LogisticRegression(C=1.0), tmp_path / "server.joblib")
    joblib.dump(LogisticRegression(C=2.0), tmp_path / "node.joblib")
    digest = file_digest(tmp_path / "server.joblib")
    assert digest.dtype == np.uint8 and digest.shape == (32,)
    assert load_verified(tmp_path / "server.joblib", digest, "common expert").C == 1.0
    with pytest.raises(ValueError, match="common expert at .* differs from the server"):
        load_verified(tmp_path / "node.joblib", digest, "common expert")


def test_app_defaults_are_the_estimators_defaults():
    config = flower_app_config()
    defaults = DDOMEClassifier().get_params()
    for key, param in ESTIMATOR_KEYS.items():
        if key == "random-state":  # a deployment is reproducible by default
            continue
        assert config[key] == defaults[param], key
    # TOML has no None: the guard is "common_expert" or "" (off)
    assert config["guard"] == defaults["guard"] == "common_expert"


def test_app_project_is_a_valid_flower_app():
    pytest.importorskip("flwr", reason="flwr is not installed (skmoe[federated])")
    import tomllib

    from flwr.common.config import validate_config

    with open(flower_app_path() / "pyproject.toml", "rb") as file:
        config = tomllib.load(file)
    # check_module: the components resolve to the installed skmoe's objects
    assert validate_config(config, check_module=True) == (True, [], [])


# ------------------------------------------------- the server's side, on a fake grid
class _Reply:
    """What the server reads of a Flower reply."""

    def __init__(self, node, answer):
        from skmoe.federated._flower import encode

        self.metadata = type("Metadata", (), {"src_node_id": node})()
        self.error = type("Error", (), {"reason": answer})()
        self.content = None if isinstance(answer, str) else encode(answer)

    def has_error(self):
        return self.content is None


class _FakeGrid:
    """Nodes with canned answers: a dict (a reply), a string (an error), None (mute)."""

    def __init__(self, answers):
        self.answers = answers

    def get_node_ids(self):
        return list(self.answers)

    def send_and_receive(self, messages, *, timeout=None):
        for message in messages:
            answer = self.answers[message.metadata.dst_node_id]
            if answer is not None:
                yield _Reply(message.metadata.dst_node_id, answer)


@pytest.fixture
def server_task(monkeypatch):
    """Messages need a run; Flower sets it in a real ServerApp process."""
    pytest.importorskip("flwr", reason="flwr is not installed (skmoe[federated])")
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


def _description(name, labels, counts):
    return {
        "name": name,
        "n_samples": int(np.sum(counts)),
        "n_features": 4,
        "n_expert_features": 6,
        "n_embedding": 3,
        "labels": np.asarray(labels),
        "label_counts": np.asarray(counts, dtype=np.float64),
        "embedding_sum": np.ones(3),
        "embedding_sum_squares": np.ones(3),
    }


def test_server_orders_clients_by_name_and_says_what_it_dropped(server_task):
    from skmoe.federated._flower_app import GridTransport, describe_clients

    grid = _FakeGrid(
        {
            11: _description(2, [0, 5], [3, 1]),
            12: _description(0, [1, 5], [2, 2]),
            13: "ValueError: no partition",
            14: None,
        }
    )
    transport = GridTransport(grid, {}, timeout=1.0)
    names, n_features, n_expert_features, n_embedding, classes = describe_clients(
        transport, [11, 12, 13, 14]
    )
    assert names == [0, 2]
    assert (n_features, n_expert_features, n_embedding) == (4, 6, 3)
    np.testing.assert_array_equal(classes, [0, 1, 5])
    assert transport.node_of == {0: 12, 1: 11}
    # label counts mapped onto the federation's classes
    np.testing.assert_array_equal(transport.described[0]["label_counts"], [0, 2, 2])
    np.testing.assert_array_equal(transport.described[1]["label_counts"], [3, 0, 1])

    replies = transport.gate_scores({0: {}, 1: {}})
    assert set(replies) == {0, 1}
    grid.answers[11] = "RuntimeError: out of memory"
    grid.answers[12] = None
    assert transport.update({0: {}, 1: {}}) == {}
    assert transport.dropped == [
        (
            "train",
            {
                0: "no reply within 1.0 s",
                1: "error on the node: RuntimeError: out of memory",
            },
        )
    ]


def test_server_refuses_ambiguous_clients(server_task):
    from skmoe.federated._flower_app import GridTransport, describe_clients

    same_name = _FakeGrid(
        {1: _description("a", [0], [1]), 2: _description("a", [1], [1])}
    )
    with pytest.raises(ValueError, match=r"Several SuperNodes call themselves \['a'\]"):
        describe_clients(GridTransport(same_name, {}), [1, 2])
    mixed_labels = _FakeGrid(
        {1: _description("a", [0], [1]), 2: _description("b", ["cat"], [1])}
    )
    with pytest.raises(ValueError, match="labels are of different kinds"):
        describe_clients(GridTransport(mixed_labels, {}), [1, 2])
    silent = _FakeGrid({1: "ValueError: no partition"})
    with pytest.raises(RuntimeError, match="No SuperNode described its data"):
        describe_clients(GridTransport(silent, {}), [1])


# ------------------------------------------------------------------ deployment
def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(condition, timeout, what, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}\n{Path(p).read_text()[-2000:]}" for p in logs)
    raise TimeoutError(f"{what} not ready after {timeout} s\n{tails}")


def _healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
            return True
    except OSError:
        return False


class Federation:
    """A SuperLink and SuperNodes on 127.0.0.1, stopped by :meth:`stop`."""

    def __init__(self, root):
        self.root = root
        self.processes = {}
        self.env = {
            **os.environ,
            # the ServerApp and ClientApps run in processes that Flower starts:
            # they must import this skmoe, not another installed copy
            "PYTHONPATH": os.pathsep.join(
                [str(Path(skmoe.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
            ),
            "FLWR_HOME": str(root / "flwr-home"),
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
        }
        self.port = _free_port()
        (root / "flwr-home").mkdir()
        # the SuperLink connection `flwr run` submits to
        (root / "flwr-home" / "config.toml").write_text(
            '[superlink]\ndefault = "local-deployment"\n\n'
            "[superlink.local-deployment]\n"
            f'address = "127.0.0.1:{self.port}"\ninsecure = true\n'
        )

    def start(self, name, command):
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 - closed in stop
        self.processes[name] = (
            subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.root,
                start_new_session=True,
            ),
            log,
        )

    def start_superlink(self, *, simulation=False):
        self.start(
            "superlink",
            [
                shutil.which("flower-superlink"),
                "--insecure",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                # skmoe is installed here; do not let the SuperLink build an env
                "--disable-runtime-dependency-installation",
                *(["--simulation"] if simulation else []),
            ],
        )
        _wait_until(
            lambda: _healthy(self.port), 120, "SuperLink", [self.root / "superlink.log"]
        )

    def start_supernode(self, name, node_config):
        self.start(
            name,
            [
                shutil.which("flower-supernode"),
                "--insecure",
                "--superlink",
                f"127.0.0.1:{self.port}",
                "--port",
                str(_free_port()),
                "--node-config",
                node_config,
            ],
        )

    def kill(self, name):
        process, log = self.processes.pop(name)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        log.close()

    def stop(self):
        # SIGTERM lets the SuperLink and SuperNodes stop the SuperExec they started
        for process, _ in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for name in list(self.processes):
            process = self.processes[name][0]
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            self.kill(name)

    def run(self, app, run_config, *, on_line=None, options=(), timeout=1500):
        """``flwr run`` to the end (``--stream`` returns when the run ends).

        Returns the exit code and the output (the ServerApp's log); ``on_line`` is
        called with each line as it comes.
        """
        overrides = " ".join(
            f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}"
            for key, value in run_config.items()
        )
        command = [
            shutil.which("flwr"),
            "run",
            str(app),
            "local-deployment",
            "--run-config",
            overrides,
            "--stream",
            *options,
        ]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.root,
            text=True,
        )
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        lines = []
        try:
            for line in process.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line)
            process.wait()
        finally:
            watchdog.cancel()
            process.kill()
            process.stdout.close()
        return process.returncode, "".join(lines)

    def logs(self):
        return "\n".join(
            f"--- {path.name}\n{path.read_text()[-3000:]}"
            for path in sorted(self.root.glob("*.log"))
        )


def _partitions(root):
    """Three label-skewed partition files (npz, CSV, npz) and the common expert."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(0)
    rows = rng.permutation(y.shape[0])[:360]
    X, y = X[rows] / 16.0, y[rows]
    # client c holds mostly the digits of its third of the labels
    client_ids = np.where(rng.random_sample(y.shape[0]) < 0.8, y % N_CLIENTS, -1)
    client_ids[client_ids < 0] = rng.randint(N_CLIENTS, size=(client_ids < 0).sum())
    common_expert = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    common_expert.fit(X[:60], y[:60])
    joblib.dump(common_expert, root / "common_expert.joblib")
    paths = []
    for c in range(N_CLIENTS):
        mine = client_ids == c
        if c == 1:  # one data owner keeps a CSV file
            path = root / f"owner{c}.csv"
            header = ",".join([f"pixel{j}" for j in range(X.shape[1])] + ["y"])
            lines = [
                ",".join([repr(float(v)) for v in row] + [str(label)])
                for row, label in zip(X[mine], y[mine], strict=True)
            ]
            path.write_text("\n".join([header, *lines]) + "\n")
        else:
            path = root / f"owner{c}.npz"
            np.savez(path, X=X[mine], y=y[mine])
        paths.append(path)
    return X, y, client_ids, common_expert, paths


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    pytest.importorskip("flwr", reason="flwr is not installed (skmoe[federated])")
    for executable in ("flwr", "flower-superlink", "flower-supernode"):
        if shutil.which(executable) is None:
            pytest.skip(f"the {executable} executable of flwr is not on PATH")
    root = tmp_path_factory.mktemp("federation")
    X, y, client_ids, common_expert, paths = _partitions(root)
    federation = Federation(root)
    try:
        federation.start_superlink()
        for c, path in enumerate(paths):
            federation.start_supernode(
                f"supernode{c}", f"partition='{path}' client-id={c}"
            )
        federation.data = (X, y, client_ids, common_expert)
        yield federation
    finally:
        federation.stop()


def test_flower_deployment_gives_the_in_process_model(federation):
    X, y, client_ids, common_expert = federation.data
    root = federation.root
    run_config = {
        **RUN_PARAMS,
        "common-expert": str(root / "common_expert.joblib"),
        "model-path": str(root / "model.joblib"),
        "min-nodes": N_CLIENTS,
    }
    returncode, output = federation.run(flower_app_path(), run_config)
    model_path = root / "model.joblib"
    assert returncode == 0 and model_path.exists(), (
        f"flwr run exited with {returncode}\n{output[-4000:]}\n{federation.logs()}"
    )
    deployed = joblib.load(model_path)

    in_process = DDOMEClassifier(
        common_expert,
        n_experts=3,
        n_rounds=2,
        clients_per_round=3,
        local_epochs=1,
        random_state=0,
    ).fit(X, y, client_ids)
    np.testing.assert_allclose(deployed.gate_.coef_, in_process.gate_.coef_)
    np.testing.assert_allclose(deployed.gate_.intercept_, in_process.gate_.intercept_)
    for a, b in zip(deployed.experts_, in_process.experts_, strict=True):
        np.testing.assert_allclose(a.coef_, b.coef_)
        np.testing.assert_allclose(a.intercept_, b.intercept_)
    assert deployed.anchors_ == in_process.anchors_
    # the guard's counts come from the nodes' own validation rows
    for key in ("n_routed", "n_expert_only", "n_common_only", "trusted"):
        np.testing.assert_array_equal(deployed.guard_[key], in_process.guard_[key])
    assert deployed.guard_["n_clients"] == N_CLIENTS
    assert {c: e.tolist() for c, e in deployed.client_experts_.items()} == {
        c: e.tolist() for c, e in in_process.client_experts_.items()
    }
    np.testing.assert_array_equal(deployed.classes_, in_process.classes_)
    np.testing.assert_array_equal(
        deployed.predict(X, client_ids), in_process.predict(X, client_ids)
    )
    assert [h["clients"] for h in deployed.history_] == [
        h["clients"] for h in in_process.history_
    ]
    assert deployed.dropped_ == []


def test_deployment_survives_faulty_and_dying_nodes(federation):
    """NaN and wrong-shape replies are rejected, a killed SuperNode is dropped.

    A fourth data owner holds a single sample (so a single class); the ClientApp of
    ``flower_fault_app/faulty_client.py`` makes client 1 send a NaN gate and client 2
    a gate of the wrong shape; SuperNode 0 is killed once the first round ended.
    """
    X, y, _, _ = federation.data
    root = federation.root
    tiny = root / "tiny.npz"
    np.savez(tiny, X=X[:1], y=y[:1])
    federation.start_supernode("supernode3", f"partition='{tiny}' client-id=3")
    app = root / "fault_app"
    app.mkdir()
    pyproject = (flower_app_path() / "pyproject.toml").read_text()
    pyproject = pyproject.replace(
        'clientapp = "skmoe.federated._flower_app:client_app"',
        'clientapp = "faulty_client:client_app"',
    ).replace(
        "[tool.flwr.app.config]\n",
        '[tool.flwr.app.config]\nfault-nan = ""\nfault-shape = ""\n',
    )
    (app / "pyproject.toml").write_text(pyproject)
    shutil.copy(Path(__file__).parent / "flower_fault_app" / "faulty_client.py", app)
    run_config = {
        **RUN_PARAMS,
        "clients-per-round": 4,
        "common-expert": str(root / "common_expert.joblib"),
        "model-path": str(root / "faulty.joblib"),
        "min-nodes": 4,
        "reply-timeout": 60.0,
        "fault-nan": "1",
        "fault-shape": "2",
    }

    def kill_after_first_round(line):
        if "DDOME round 1:" in line and "supernode0" in federation.processes:
            federation.kill("supernode0")

    returncode, output = federation.run(app, run_config, on_line=kill_after_first_round)
    model_path = root / "faulty.joblib"
    assert returncode == 0 and model_path.exists(), (
        f"flwr run exited with {returncode}\n{output[-4000:]}\n{federation.logs()}"
    )
    assert "supernode0" not in federation.processes, "the kill never happened"
    model = joblib.load(model_path)
    first = model.history_[0]
    assert first["n_replies"] == 4
    assert first["rejected"] == {1: "not finite", 2: "wrong shape"}
    # the node that died is dropped from an exchange after the first round
    assert any(0 in dropped for _, dropped in model.dropped_), model.dropped_
    assert "client 0 dropped from" in output
    assert np.all(np.isfinite(model.gate_.coef_))
    for expert in model.experts_:
        assert np.all(np.isfinite(expert.coef_))
    assert model.predict(X[:20]).shape == (20,)
    # the guard counts only client 2: client 0 is dead, client 1's counts are NaN
    # and the single-sample client 3 has no row to spare for validation
    assert model.guard_["n_clients"] == 1


def test_simulation_engine_runs_the_app_to_the_in_process_model(tmp_path):
    """``flwr run`` of the same app on a SuperLink in simulation mode (Ray)."""
    pytest.importorskip("flwr", reason="flwr is not installed (skmoe[federated])")
    pytest.importorskip("ray", reason="Flower's simulation engine needs ray")
    X, y, client_ids, common_expert, _ = _partitions(tmp_path)
    for c in range(N_CLIENTS):
        np.savez(tmp_path / f"part{c}.npz", X=X[client_ids == c], y=y[client_ids == c])
    federation = Federation(tmp_path)
    try:
        federation.start_superlink(simulation=True)
        returncode, output = federation.run(
            flower_app_path(),
            {
                **RUN_PARAMS,
                "partitions": str(tmp_path / "part{partition-id}.npz"),
                "common-expert": str(tmp_path / "common_expert.joblib"),
                "model-path": str(tmp_path / "model.joblib"),
                "min-nodes": N_CLIENTS,
            },
            options=["--federation-config", f"num-supernodes={N_CLIENTS}"],
        )
    finally:
        federation.stop()
    assert returncode == 0 and (tmp_path / "model.joblib").exists(), (
        f"flwr run exited with {returncode}\n{output[-4000:]}\n{federation.logs()}"
    )
    simulated = joblib.load(tmp_path / "model.joblib")
    # the simulated nodes are named after their files: part0, part1, part2
    in_process = DDOMEClassifier(
        common_expert,
        n_experts=3,
        n_rounds=2,
        clients_per_round=3,
        local_epochs=1,
        random_state=0,
    ).fit(X, y, np.char.add("part", client_ids.astype(str)))
    np.testing.assert_allclose(simulated.gate_.coef_, in_process.gate_.coef_)
    for a, b in zip(simulated.experts_, in_process.experts_, strict=True):
        np.testing.assert_allclose(a.coef_, b.coef_)
    assert simulated.anchors_ == in_process.anchors_
    for key in ("n_routed", "n_expert_only", "n_common_only", "trusted"):
        np.testing.assert_array_equal(simulated.guard_[key], in_process.guard_[key])
