"""A plain rclpy node, run by the ROS 2 client venv's python (PyPI's Jazzy wheels), never by the project.

    ros_node.py listen TOPIC COUNT TIMEOUT -- CMD...   start CMD (the publisher, same network namespace),
                                                     record COUNT Classification + >= 1 event, print JSON
    ros_node.py decode FILE                          rclpy's deserialize_message on the CDR payloads in
                                                     FILE (JSON [[kind, hex], ...]), print JSON

Everything it prints last is one JSON line (the test reads it)."""

import json
import os
import signal
import subprocess
import sys
import time


def listen(topic, count, timeout, cmd):
    import rclpy
    from std_msgs.msg import String
    from vision_msgs.msg import Classification
    rclpy.init()                                       # the domain: ROS_DOMAIN_ID, as any ROS 2 node
    node = rclpy.create_node("avgn_test_listener")
    got = {"classification": [], "events": []}

    def on_class(m):
        got["classification"].append({"frame_id": m.header.frame_id, "sec": m.header.stamp.sec,
                                      "results": [[r.class_id, r.score] for r in m.results]})
    node.create_subscription(Classification, topic, on_class, 10)
    node.create_subscription(String, topic.rstrip("/") + "/events", lambda m: got["events"].append(m.data), 10)
    pub = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    graph = {}
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end and (len(got["classification"]) < count or not got["events"]):
            rclpy.spin_once(node, timeout_sec=0.2)
            if pub.poll() is not None:
                break
            if not graph:
                graph = {n: t for n, t in node.get_topic_names_and_types() if n.startswith(topic)}
        nodes = node.get_node_names()
    finally:
        if pub.poll() is None:
            pub.send_signal(signal.SIGTERM)
        try:
            err = pub.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            pub.kill()
            err = pub.communicate()[1]
        node.destroy_node()
        rclpy.shutdown()
    print(json.dumps({**got, "graph": graph, "nodes": nodes, "publisher_rc": pub.returncode,
                      "publisher_err": err[-3000:], "domain": os.environ.get("ROS_DOMAIN_ID")}))


def decode(path):
    from rclpy.serialization import deserialize_message
    from std_msgs.msg import String
    from vision_msgs.msg import Classification
    out = []
    for kind, payload in json.load(open(path)):
        m = deserialize_message(bytes.fromhex(payload), Classification if kind == "classification" else String)
        out.append({"frame_id": m.header.frame_id, "sec": m.header.stamp.sec,
                    "results": [[r.class_id, r.score] for r in m.results]} if kind == "classification" else
                   {"data": m.data})
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[sys.argv.index("--") + 1:])
    else:
        decode(sys.argv[2])
