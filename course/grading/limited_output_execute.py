"""nbgrader's Execute with a budget on what the kernel sends back (``nbgrader_config.py`` names it as
``course.grading.limited_output_execute.LimitedOutputExecute``), that stops a notebook whose kernel no longer
answers; under the sandboxed grading command it also records each cell's kernel reply for
:class:`~.trusted_hidden_checks.TrustedHiddenChecks`.

The notes it writes into a notebook for the student (output cut, a cell that timed out) are in the notebook's
language (``metadata.sr_kit.language``), through the course's catalogue (``student_client.grader_tr``,
``course/locales``); the grader's log stays English.
"""
import contextlib
import json
import os
import time
from queue import Empty

import zmq

from nbformat.v4 import new_output
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from traitlets import Float, Integer

from nbgrader.preprocessors import Execute
from sr_utils.i18n import notebook_language

from .contract import SANDBOX_ENV
from .student_client import grader_tr

KERNEL_REPLY = "sr_kit_kernel_reply"  # cell metadata: LimitedOutputExecute -> TrustedHiddenChecks (removed there)


class BoundedKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager, whose messages on a kernel's control channel -- the interrupt (a message for
    the sandboxed kernels: ``interrupt_mode`` ``message``) and the shutdown request -- are each sent within
    ``control_send_timeout`` seconds. A kernel whose code wrote into its own sockets can leave that channel unable to
    take a message, and a plain send then waits for ever (seen in the class batch, as a notebook ended: nbgrader held
    its worker until the submission timeout). A kernel that cannot be sent a message is killed instead."""

    control_send_timeout = Float(15.0, help="seconds a message on the kernel's control channel may take to be sent; "
                                            "past them the kernel is killed").tag(config=True)
    unreachable = False  # (set once a message could not be sent: the kernel was killed)

    async def _send_on_control(self, send) -> None:
        self._connect_control_socket()  # (jupyter_client's own socket for both messages)
        socket = self._control_socket
        socket.setsockopt(zmq.SNDTIMEO, max(1, int(self.control_send_timeout * 1000)))
        try:
            await send()
        except zmq.Again:
            self.unreachable = True
            self.log.error("The kernel's control channel took no message within %s s: the kernel is killed",
                           self.control_send_timeout)
            await self._async_kill_kernel()
        finally:
            with contextlib.suppress(zmq.ZMQError):  # (closed meanwhile)
                socket.setsockopt(zmq.SNDTIMEO, -1)

    async def _async_interrupt_kernel(self) -> None:
        if not self.unreachable:
            await self._send_on_control(super()._async_interrupt_kernel)

    async def _async_request_shutdown(self, restart: bool = False) -> None:
        if not self.unreachable:
            await self._send_on_control(lambda: AsyncKernelManager._async_request_shutdown(self, restart=restart))

    interrupt_kernel = _async_interrupt_kernel  # (AsyncKernelManager binds jupyter_client's own to these names)
    request_shutdown = _async_request_shutdown


class LimitedOutputExecute(Execute):
    """nbgrader's Execute with a budget on everything the kernel sends back.

    Every iopub message that can add to the notebook (stream, display data, execute results, errors, display
    *updates*, comm/widget messages), counted with its data, metadata and transient parts, uses the budget of
    its cell (``max_output_bytes``) and of the notebook (``max_notebook_output_bytes``). Past either, messages
    are dropped and the cell gets one note. Widget state is not stored. A submission printing gigabytes (or
    updating one display forever) cannot grow the grader's memory, the autograded notebook or the feedback.

    After a cell times out (the kernel is interrupted and the cell gets nbgrader's ``CellTimeoutError``), the
    kernel must answer a ``kernel_info`` request within ``answer_after_timeout`` seconds. One that does not (its
    code ignores the interrupt, or broke the kernel's own messaging) would make every later cell wait the whole
    cell timeout: instead the rest of the notebook is not run, each of its code cells gets an error saying why,
    and grading goes on with the next notebook, in a new kernel. Its kernels are managed by
    :class:`BoundedKernelManager`: the interrupt and the shutdown request are sent within a bound too."""

    max_output_bytes = Integer(1 << 20, help="output kept per cell, in bytes (all kinds)").tag(config=True)
    max_notebook_output_bytes = Integer(8 << 20, help="output kept per notebook, in bytes").tag(config=True)
    answer_after_timeout = Integer(15, help="seconds a kernel has to answer after a cell timed out and it was "
                                            "interrupted; past them the rest of the notebook is not run"
                                   ).tag(config=True)
    iopub_timeout = Integer(60, help="seconds a cell's last outputs may take to arrive after its reply (nbclient's "
                                     "4 s failed the whole submission of a notebook that printed a lot on a busy "
                                     "grading machine)").tag(config=True)
    store_widget_state = False
    _language = "en"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", BoundedKernelManager)  # (nbgrader's Execute sets jupyter_client's)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        """Execute ``nb``; the notes this adds (output cut, a cell that timed out) in the notebook's language."""
        self._language = notebook_language(nb)
        self._not_answering = False
        if not hasattr(self, "_raise_on_iopub_timeout"):  # (as configured; a kernel that stopped answering clears it)
            self._raise_on_iopub_timeout = self.raise_on_iopub_timeout
        self.raise_on_iopub_timeout = self._raise_on_iopub_timeout
        if not hasattr(self, "_iopub_timeout"):
            self._iopub_timeout = self.iopub_timeout
        self.iopub_timeout = self._iopub_timeout
        if not hasattr(self, "_timeout_error"):
            self._timeout_error = dict(self.error_on_timeout or {})
        if not hasattr(self, "_shutdown_kernel"):
            self._shutdown_kernel = self.shutdown_kernel
        self.shutdown_kernel = self._shutdown_kernel
        if self._timeout_error.get("ename") == "CellTimeoutError":  # nbgrader's, in the student's words
            said = grader_tr("No reply from kernel before timeout", language=self._language)
            self.error_on_timeout = {**self._timeout_error,
                                     "traceback": [f"\x1b[0;31mCellTimeoutError\x1b[0m: {said}"]}
        return super().preprocess(nb, resources, km)

    async def _async_handle_timeout(self, timeout, cell=None):
        reply = await super()._async_handle_timeout(timeout, cell)  # (interrupts the kernel)
        if not await self._kernel_answers(self.answer_after_timeout):
            self.log.error("The kernel did not answer within %s s of the interrupt: the rest of the notebook is "
                           "not run", self.answer_after_timeout)
            self._not_answering = True
            self.raise_on_iopub_timeout = False  # (its idle status will not come either: no wait ends the run)
            self.iopub_timeout = 1  # (... nor its last outputs: not waited for)
            self.shutdown_kernel = "immediate"  # (... nor a shutdown request: the kernel is killed)
        return reply

    async def _kernel_answers(self, wait: float) -> bool:
        """Whether the kernel answers a ``kernel_info`` request within ``wait`` seconds (other shell messages that
        arrive meanwhile, such as the interrupted cell's late reply, are dropped: nbclient has its reply). The
        request itself is sent within ``wait`` too: a kernel whose code wrote into its own sockets can leave the
        shell channel unable to take a message, and a plain send then waits for ever (seen in the class batch)."""
        deadline = time.monotonic() + wait
        socket = self.kc.shell_channel.socket
        socket.setsockopt(zmq.SNDTIMEO, max(1, int(wait * 1000)))
        try:
            msg_id = self.kc.kernel_info()
        except zmq.Again:
            return False
        finally:
            socket.setsockopt(zmq.SNDTIMEO, -1)
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Empty:
                return False
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return True
        return False

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if not (self._not_answering and cell.cell_type == "code" and cell.source.strip()):
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        said = grader_tr("not run: the kernel stopped answering after a cell timed out", language=self._language)
        cell.outputs = [new_output("error", ename="KernelNotAnswering", evalue=said,
                                   traceback=[f"\x1b[0;31mKernelNotAnswering\x1b[0m: {said}"])]
        cell.execution_count = None
        await self._check_raise_for_error(cell, cell_index, {"content": {"status": "error",
                                                                         "ename": "KernelNotAnswering",
                                                                         "evalue": said}})
        return cell

    execute_cell = run_sync(async_execute_cell)  # (nbclient binds its own at class creation)

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        """(sandboxed grader) What the kernel replied for this cell, for :class:`TrustedHiddenChecks` (which takes
        it out of the cell's metadata): it is one of the things a cell's kernel run is judged on, never a pass."""
        if os.environ.get(SANDBOX_ENV) and cell.get("cell_type") == "code":
            content = (exec_reply or {}).get("content") or {}
            cell.metadata[KERNEL_REPLY] = {"status": str(content.get("status", "none"))[:20],
                                           "ename": str(content.get("ename", ""))[:100],
                                           "evalue": str(content.get("evalue", ""))[:300]}
        return await super()._check_raise_for_error(cell, cell_index, exec_reply)

    def process_message(self, msg, cell, cell_index):
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        if kind in ("status", "execute_input", "execute_reply"):
            return super().process_message(msg, cell, cell_index)
        try:
            size = len(json.dumps(msg.get("content", {}), default=str))
        except (TypeError, ValueError):
            size = self.max_notebook_output_bytes + 1
        used = self._budget = getattr(self, "_budget", {})
        cell_before, total_before = used.get(cell_index, 0), used.get("total", 0)
        used[cell_index], used["total"] = cell_before + size, total_before + size
        if cell_before + size <= self.max_output_bytes and total_before + size <= self.max_notebook_output_bytes:
            return super().process_message(msg, cell, cell_index)
        content = msg.get("content", {})
        grading = kind == "error" or kind == "execute_result" or (kind == "stream" and content.get("name") == "stderr")
        if grading and used.get(("kept", cell_index), 0) < 3:
            # what decides a cell's score (an error, stderr, a result) is never dropped: kept, shortened
            used[("kept", cell_index)] = used.get(("kept", cell_index), 0) + 1
            short = {"error": {"ename": str(content.get("ename", ""))[:100], "evalue": str(content.get("evalue", ""))
                               [:1000], "traceback": []},
                     "stream": {"name": "stderr", "text": str(content.get("text", ""))[:1000]},
                     "execute_result": {"execution_count": content.get("execution_count"), "metadata": {},
                                        "data": {"text/plain": str(content.get("data", {}).get("text/plain", ""))
                                                 [:1000]}}}[kind]
            return super().process_message({**msg, "content": short}, cell, cell_index)
        if not used.get(("noted", cell_index)):
            used[("noted", cell_index)] = True
            note = grader_tr("[output truncated by the grader: at most {cell} bytes per cell and {notebook} per "
                             "notebook]", language=self._language, cell=self.max_output_bytes,
                             notebook=self.max_notebook_output_bytes)
            cell.outputs.append(new_output("stream", name="stdout", text=f"\n{note}\n"))
        return None
