"""SIGTERM ends what runs like Ctrl-C, inside the block only; a worker leaves Ctrl-C alone."""

import os
import signal

import pytest

from medbench.engine.interrupts import sigint_ignored, sigterm_as_interrupt


def test_sigterm_raises_keyboard_interrupt_inside_the_block_only():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_is_ignored_while_a_worker_starts():
    before = signal.getsignal(signal.SIGINT)
    with sigint_ignored():
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)  # nothing happens
    assert signal.getsignal(signal.SIGINT) is before
