"""Outputs: every sink the live loop and the service feed, one module each (base.py: the interface).

    base.py      Sink (decision, event, frame, close), Worker (bounded queue + thread), Fanout
    records.py   the event record all of them publish (Frigate's shape + evidence), clip/snapshot names
    jsonl.py     JSON lines                      mqtt.py   MQTT (Frigate / Home Assistant topics)
    clips.py     event clips with sound, snapshots, retention
    web.py       the live web view (MJPEG, labels, audio meter, saliency, events)
    ros2.py      ROS 2 (rmw_zenoh over zenoh, or rclpy)
    video.py     display window and annotated MP4 (frame sinks of ``live``)
"""
