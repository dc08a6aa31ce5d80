"""Fall detection from raw accelerometer windows, trained on SisFall. Pure: no DB, MQTT or clock."""
