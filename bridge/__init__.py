"""bridge: wire format, gr-zeromq/PMT parsing and ZeroMQ transports.

Runs under both interpreters (numpy 1.24 on the radio side, numpy 2.x in .venv):
imports only the standard library, numpy and pyzmq.
"""
