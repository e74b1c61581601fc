"""Fault scripts for tradelog: kill -9 loops, a full disk, and bad-input fuzzing.

Each module runs a real ``tradelog serve`` subprocess and checks the contract's
promises after the fault (PROTOCOL.md: nothing acknowledged is lost, nothing partial
is stored, no bad request stops the daemon). Run one with
``python -m bench.faults.killloop``, ``python -m bench.faults.diskfull`` or
``python -m bench.faults.fuzz``; ``docs/FAULTS.md`` says what each checks.
"""
