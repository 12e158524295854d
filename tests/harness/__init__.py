"""Test harness for awsha's integration tests: patched moto (moto_launcher), fault-injecting proxy
(fault_proxy), IMDSv2 emulator (imds_emulator), fake FreeBSD ifconfig (fake_ifconfig) and the
process plumbing they share (procs). Each server is also a standalone script printing `READY <port>`.
"""
