"""A kernel that stops answering after a cell timed out costs its notebook one cell timeout, not one per cell.

``LimitedOutputExecute`` (the grader's nbgrader Execute) interrupts a cell past its timeout, as nbgrader does, and
then asks the kernel for ``kernel_info``: a kernel that does not answer (here: its code ignores the interrupt and
keeps the kernel busy) gets the rest of its notebook not run, each code cell with an error saying why."""
from __future__ import annotations

import time

import nbformat
from jupyter_core.utils import run_sync
from nbformat.v4 import new_code_cell, new_notebook

from course.grading.limited_output_execute import LimitedOutputExecute


def _run(cells: list[str], timeout: int, answer_after_timeout: int) -> tuple[nbformat.NotebookNode, float]:
    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    ep = LimitedOutputExecute(timeout=timeout, answer_after_timeout=answer_after_timeout, kernel_name="python3")
    t0 = time.monotonic()
    ep.preprocess(nb, {"metadata": {"path": "."}})
    return nb, time.monotonic() - t0


def _errors(cell) -> list[str]:
    return [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]


def test_a_kernel_that_ignores_the_interrupt_gets_the_rest_of_its_notebook_not_run():
    stuck = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
    nb, seconds = _run(["x = 1", stuck, "y = 2", "print('after')"], timeout=4, answer_after_timeout=3)
    assert "CellTimeoutError" in _errors(nb.cells[1])
    for cell in nb.cells[2:]:
        assert _errors(cell) == ["KernelNotAnswering"], cell.outputs
        assert "stopped answering" in cell.outputs[0]["evalue"]
    assert seconds < 4 + 3 + 20, f"{seconds:.0f} s: the later cells waited for the kernel"


def test_a_kernel_that_answers_after_the_interrupt_runs_the_rest():
    nb, _ = _run(["import time\nwhile True:\n    time.sleep(0.1)\n", "print('after')"], timeout=3,
                 answer_after_timeout=15)
    assert _errors(nb.cells[0]) == ["KeyboardInterrupt", "CellTimeoutError"]
    assert [o.get("text") for o in nb.cells[1].outputs] == ["after\n"]


def _socket_that_cannot_send():
    """A socket that cannot take a message: a DEALER with ``ZMQ_IMMEDIATE`` towards a port nothing listens on, whose
    sends wait for a peer that never comes (what a kernel that wrote into its own sockets left nbgrader's client
    with, in the class batch)."""
    import zmq

    from course_fixtures import free_port

    stuck = zmq.Context.instance().socket(zmq.DEALER)
    stuck.setsockopt(zmq.IMMEDIATE, 1)
    stuck.setsockopt(zmq.LINGER, 0)
    stuck.connect(f"tcp://127.0.0.1:{free_port()}")
    return stuck


class _ShellThatCannotSend(LimitedOutputExecute):
    """Once a cell timed out, the client's shell socket is one that cannot take a message."""

    async def _async_handle_timeout(self, timeout, cell=None):
        self.replaced = self.kc.shell_channel.socket
        self.kc.shell_channel.socket = _socket_that_cannot_send()
        return await super()._async_handle_timeout(timeout, cell)


def test_a_shell_channel_that_cannot_take_the_question_counts_as_a_kernel_not_answering():
    """The ``kernel_info`` question after a timed-out cell is itself sent within the answer time: a send that
    would wait for ever (nbgrader then held its worker until the submission timeout) is a kernel not answering, the
    rest of the notebook is not run, and the kernel is killed rather than asked to shut down."""
    import threading

    nb = new_notebook(cells=[new_code_cell(src) for src in
                             ["import time\nwhile True:\n    time.sleep(0.1)\n", "print('after')"]])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    ep = _ShellThatCannotSend(timeout=3, answer_after_timeout=3, kernel_name="python3")
    done = threading.Event()

    def run():
        ep.preprocess(nb, {"metadata": {"path": "."}})
        done.set()

    t0 = time.monotonic()
    threading.Thread(target=run, daemon=True).start()
    assert done.wait(3 + 3 + 60), "the question to the kernel was never sent: grading waited for ever"
    seconds = time.monotonic() - t0
    ep.replaced.close(linger=0)
    assert "CellTimeoutError" in _errors(nb.cells[0])
    assert _errors(nb.cells[1]) == ["KernelNotAnswering"], nb.cells[1].outputs
    assert ep.shutdown_kernel == "immediate"
    assert seconds < 3 + 3 + 30, f"{seconds:.0f} s"


class _ControlThatCannotSend(LimitedOutputExecute):
    """Once the notebook ran, the kernel manager's control socket is one that cannot take a message, and the kernel's
    interrupts travel as messages (as the sandboxed kernels' do)."""

    async def _async_cleanup_kernel(self):
        self.kernel_process = self.km.provisioner.process
        self.km.kernel_spec.interrupt_mode = "message"
        self.km._control_socket = _socket_that_cannot_send()  # (jupyter_client's socket for the control channel)
        return await super()._async_cleanup_kernel()

    _cleanup_kernel = run_sync(_async_cleanup_kernel)  # (nbclient binds its own at class creation)


def test_a_control_channel_that_cannot_take_a_message_gets_its_kernel_killed():
    """As a notebook ends, its kernel is shut down with an interrupt and a shutdown request on its control channel.
    Each is sent within a bound (``BoundedKernelManager.control_send_timeout``): a kernel that cannot be sent one is
    killed, and grading goes on (a plain send waited for ever: nbgrader held its worker until the submission
    timeout, in the class batch)."""
    import threading

    from traitlets.config import Config

    nb = new_notebook(cells=[new_code_cell("print('ran')")])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    ep = _ControlThatCannotSend(timeout=60, kernel_name="python3",
                                config=Config({"BoundedKernelManager": {"control_send_timeout": 2}}))
    done = threading.Event()

    def run():
        ep.preprocess(nb, {"metadata": {"path": "."}})
        done.set()

    threading.Thread(target=run, daemon=True).start()
    ended = done.wait(60 + 60)
    if not ended:
        ep.kernel_process.kill()
    assert ended, "the interrupt was never sent: grading waited for ever"
    assert ep.kernel_process.poll() is not None, "the kernel still runs"
    assert [o.get("text") for o in nb.cells[0].outputs] == ["ran\n"]
