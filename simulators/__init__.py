"""Device simulators: fake wristbands, bed mats, sensors and buttons speaking protocol v1.

They talk to the backend only through the MQTT broker, exactly like real devices
(docs/device-protocol.md), and never import the backend's internals.
"""
