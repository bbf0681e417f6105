"""``python -I -m course.sandbox kernel CONNECTION_FILE``: the ``sr-sandbox`` kernelspec's command (started by
Jupyter, not by hand): :func:`course.sandbox.kernel.kernel_main`."""
import sys

from course.sandbox.kernel import kernel_main

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "kernel":
        kernel_main(sys.argv[2])
    else:
        sys.exit(f"usage: {sys.argv[0]} kernel CONNECTION_FILE (started by Jupyter, not by hand)")
