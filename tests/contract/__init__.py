"""Contract tests: the official openai SDK drives a live server over a loopback socket.

They run under the SDK installed in the test environment (the newest 3.x) and again under
openai==1.59.4 (see tests/test_sdk_versions.py), so they use only calls both versions have.
"""
