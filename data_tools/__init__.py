"""data_tools: download, prepare and bundle the data of the SR course kit (``python -m data_tools --help``)."""
