"""A real ROS 2 node (rclpy from PyPI's Jazzy wheels, Fast DDS, in the client venv) hears what
avgn-edge publishes: ``serve`` with ``ros2: {rclpy: always}`` and no domain set, both processes in
a private network namespace (``unshare -n``: DDS discovery never reaches the host's network) on a
random ROS_DOMAIN_ID. The zenoh path: samples captured on loopback (scouting off), attachments
decoded by zenoh.ext as rmw_zenoh_cpp >= 0.2.4 does, CDR by rclpy's own deserialize_message."""

import json
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from client_rigs import ROOT
from live_rigs import _unavailable
from ros_rigs import ros_env, site_packages, vision_msgs

pytestmark = [pytest.mark.clients, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
# upstream vision_msgs 4.1.1's Classification (rosidl_generator_type_description; the project's typestore agrees)
CLASSIFICATION_HASH = "RIHS01_f74db28d0eaef3afb78f48bf2161cd709a1383a0309d3454383b25be11345143"


@pytest.fixture(scope="module")
def ros():
    t0 = time.monotonic()
    venv, install = vision_msgs()
    print(f"vision_msgs ready in {time.monotonic() - t0:.1f} s")
    return venv, install


def run_node(venv, install, args, timeout, netns=False, **extra):
    cmd = [str(venv / "bin" / "python"), str(HERE / "ros_node.py"), *args]
    if netns:                                  # as root: -n; else a user namespace too (-rn)
        flags = next((f for f in ("-n", "-rn") if shutil.which("unshare") and
                      subprocess.run(["unshare", f, "true"], capture_output=True).returncode == 0), None)
        if flags is None:
            _unavailable("the rclpy test needs a private network namespace (unshare -n or -rn) for DDS")
        cmd = ["unshare", flags, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]
    r = subprocess.run(cmd, env=ros_env(venv, install, **extra), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_built_classification_has_upstreams_type_hash(ros):
    from avgn_edge.sinks.ros2 import CLASSIFICATION, typestore
    _, install = ros
    desc = json.loads((install / "share" / "vision_msgs" / "msg" / "Classification.json").read_text())
    hashes = {h["type_name"]: h["hash_string"] for h in desc["type_hashes"]}
    assert hashes["vision_msgs/msg/Classification"] == CLASSIFICATION_HASH
    assert typestore().hash_rihs01(CLASSIFICATION) == CLASSIFICATION_HASH


def test_serve_through_rclpy_reaches_a_real_node_on_the_environments_domain(ros, tmp_path):
    venv, install = ros
    domain = random.randint(1, 100)
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(json.dumps({"api": {"port": 0}, "detect": {"threshold": 0.2}, "jsonl": {"enabled": False},
                               "ros2": {"rclpy": "always"},            # no domain: ROS_DOMAIN_ID decides
                               "cameras": {"front": {"source": "synth://?seed=3"}}}))
    # serve in the project's venv, ROS "sourced" behind its own packages (as --system-site-packages would)
    ros_paths = [str(site_packages(venv)), str(site_packages(install))]
    serve = ["env", f"PYTHONPATH={ROOT}", sys.executable, "-c",
             f"import sys; sys.path += {ros_paths!r}; from avgn_edge.cli.main import main; "
             f"sys.exit(main(['serve', {str(cfg)!r}]))"]
    got = run_node(venv, install, ["listen", "/avgn/classification", "8", "240", "--", *serve], 300, netns=True,
                   ROS_DOMAIN_ID=str(domain))
    assert got["domain"] == str(domain)
    assert len(got["classification"]) >= 8 and got["events"], got["publisher_err"]
    labels = {c for c, _ in got["classification"][0]["results"]}          # the shipped model's labels
    assert len(labels) > 2 and "background" in labels
    for m in got["classification"]:
        assert m["frame_id"] == "front" and m["sec"] > 1_600_000_000
        assert {c for c, _ in m["results"]} == set(labels)
        assert sum(s for _, s in m["results"]) == pytest.approx(1.0, abs=1e-3)
    events = [json.loads(e) for e in got["events"]]
    assert {e["type"] for e in events} <= {"new", "update", "end"} and events[0]["after"]["camera"] == "front"
    assert events[0]["after"]["label"] in labels
    assert got["graph"]["/avgn/classification"] == ["vision_msgs/msg/Classification"]
    assert got["graph"]["/avgn/classification/events"] == ["std_msgs/msg/String"]
    assert "avgn_edge" in got["nodes"] and got["publisher_rc"] == 0, got["publisher_err"]
    assert "failed" not in got["publisher_err"], got["publisher_err"]          # a clean stop, too


def test_the_zenoh_path_decodes_with_rmw_zenohs_attachment_rule_and_rclpys_cdr(ros, tmp_path):
    pytest.importorskip("zenoh")
    import zenoh
    import zenoh.ext as ze
    from output_rigs import LABELS, feed
    from serve_rigs import free_port, wait_for
    from avgn_edge.sinks.base import Worker
    from avgn_edge.sinks.ros2 import Ros2Settings, Ros2Sink
    venv, install = ros
    port = free_port()
    w = Worker(Ros2Sink(Ros2Settings(listen=[f"tcp/127.0.0.1:{port}"], rclpy="never", scout=False, domain=9)))
    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("connect/endpoints", json.dumps([f"tcp/127.0.0.1:{port}"]))
    got, lock = [], threading.Lock()

    def on(sample):
        with lock:
            got.append((str(sample.key_expr), sample.payload.to_bytes(), sample.attachment))
    with zenoh.open(conf) as other:
        sub = other.declare_subscriber("9/avgn/**", on)
        for _ in range(100):
            feed(w, [(1.0, {"bell": 0.7})])
            time.sleep(0.1)
            if got:
                break
        feed(w, [(1.5, {"bell": 0.8}), (2.0, {}), (2.5, {}), (3.0, {}), (3.5, {"buzz": 0.9})])
        wait_for(lambda: len([k for k, *_ in got if "String" in k]) >= 2, 15, what="event samples")
        sub.undeclare()
    w.close()
    seqs = {}
    for key, _, att in got:
        # rmw_zenoh_cpp's AttachmentData(const zenoh::Bytes&): Deserializer: int64 seq, int64 ts, then
        # deserialize<std::array<uint8_t, 16>>: zenoh.ext reads the same (int, int, bytes) encoding
        seq, stamp, gid = ze.z_deserialize(tuple[ze.Int64, ze.Int64, bytes], att)
        assert len(gid) == 16 and stamp > 1_600_000_000 * 10**9
        seqs.setdefault(key, []).append(int(seq))
    assert all(s == list(range(s[0], s[0] + len(s))) for s in seqs.values())   # per publisher, in order
    samples = [["classification" if "Classification" in k else "string", p.hex()] for k, p, _ in got]
    (tmp_path / "cdr.json").write_text(json.dumps(samples))
    decoded = run_node(venv, install, ["decode", str(tmp_path / "cdr.json")], 120)
    assert len(decoded) == len(samples)
    classes = [d for d, (k, _) in zip(decoded, samples) if k == "classification"]
    assert classes[0]["frame_id"] == "door" and classes[0]["results"][0][0] == "bell"
    assert classes[0]["results"][0][1] == pytest.approx(0.7, abs=1e-6) and {c for c, _ in classes[0]["results"]} == set(LABELS)
    events = [json.loads(d["data"]) for d, (k, _) in zip(decoded, samples) if k == "string"]
    assert events[0]["type"] == "new" and events[0]["after"]["label"] == "bell"


def test_real_rclpy_without_vision_msgs_is_one_clear_line(ros, tmp_path):
    venv, _ = ros
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(json.dumps({"api": {"port": 0}, "ros2": {"rclpy": "always"},
                               "cameras": {"front": {"source": "synth://?seed=3"}}}))
    code = (f"import sys; sys.path += [{str(site_packages(venv))!r}]; from avgn_edge.cli.main import main; "
            f"sys.exit(main(['serve', {str(cfg)!r}]))")
    env = ros_env(venv, None, PYTHONPATH=str(ROOT), ROS_DISTRO="jazzy")     # ROS sourced, vision_msgs not installed
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    said = [l for l in r.stderr.splitlines() if "vision_msgs" in l]
    assert said and "rclpy imports but vision_msgs does not" in said[0], r.stderr[-2000:]
    assert "ros-jazzy-vision-msgs" in r.stderr
