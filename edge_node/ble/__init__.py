"""The BLE path: sources → iBeacon parser → RSSI filters → presence state machine."""
