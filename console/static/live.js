// The live stream, the alarm and the reconnect sign (see console/live.py).
