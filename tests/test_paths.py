import errno

import pytest

from medbench.errors import StorageError
from medbench.paths import atomic_write, ensure_folder


def test_a_full_disk_is_one_line_naming_the_file(tmp_path):
    target = tmp_path / "ckpt" / "job.pt"

    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError, match=r"job\.pt: cannot write \(no space left on device\)"):
        atomic_write(target, full)
    assert list(target.parent.iterdir()) == []  # no temp file left behind


def test_torch_save_wrapping_the_os_error_is_recognised(tmp_path):
    def wrapped(f):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as err:
            raise RuntimeError("PytorchStreamWriter failed writing file data") from err

    with pytest.raises(StorageError, match="no space left on device"):
        atomic_write(tmp_path / "x.pt", wrapped)


def test_a_cache_folder_that_is_a_file(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match=r"cache: exists and is not a folder"):
        ensure_folder(blocker)
    with pytest.raises(
        StorageError, match=r"cache: exists and is not a folder \(so .*images cannot"
    ):
        ensure_folder(blocker / "images")


def test_cache_folder_a_file_at_the_command_line(tmp_path, monkeypatch, capsys, tiny_bus):
    from medbench.cli import main

    blocker = tmp_path / "cache"
    blocker.write_text("x")
    monkeypatch.setenv("MEDBENCH_CACHE_DIR", str(blocker))
    code = main(["run", "demo", "--data-root", str(tiny_bus), "--set", "data.image_size=16"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("medbench: error: ") and "cache" in err[0] and "not a folder" in err[0]


def test_an_interrupt_during_a_write_lands_after_it(tmp_path):
    """Ctrl-C or SIGTERM inside torch.save would break its zip writer (job FAILED, not KILLED):
    it is held until the file is complete, then raised."""
    import os
    import signal
    from functools import partial

    import torch

    target = tmp_path / "ckpt.pt"

    def save_while_interrupted(f):
        os.kill(os.getpid(), signal.SIGINT)
        torch.save({"w": torch.arange(10_000)}, f)

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, save_while_interrupted)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.arange(10_000))
    assert list(tmp_path.iterdir()) == [target]
    atomic_write(target, partial(torch.save, {"w": 1}))  # and the handler is back in place
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupt_inside_a_held_block_lands_after_it_and_a_second_at_once():
    import os
    import signal

    from medbench.paths import held_interrupts

    done = []
    with pytest.raises(KeyboardInterrupt), held_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("write finished")  # not cut short
    assert done == ["write finished"]
    with pytest.raises(KeyboardInterrupt), held_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # the user insists
        done.append("never")
    assert done == ["write finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_signal_the_process_ignores_stays_ignored_in_a_held_block():
    """A packed worker ignores Ctrl-C (the grid decides); the grid's SIGTERM must still count
    as the first interrupt, not as the second that cuts a checkpoint write short."""
    import os
    import signal

    from medbench.paths import held_interrupts

    def stop(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, stop)
    done = []
    try:
        with pytest.raises(KeyboardInterrupt), held_interrupts():
            os.kill(os.getpid(), signal.SIGINT)  # the terminal's Ctrl-C: ignored
            os.kill(os.getpid(), signal.SIGTERM)  # the grid's stop: held
            done.append("write finished")
        assert done == ["write finished"]
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
