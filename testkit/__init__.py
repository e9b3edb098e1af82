"""What the tests and benches need to talk to the real stack: a Hue bridge emulator, PCM capture,
the app on loopback. Not part of the product (not in the wheel)."""
