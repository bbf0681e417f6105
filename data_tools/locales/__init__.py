"""Message catalogues of ``data_tools``: one module per language, ``MESSAGES = {English template: translation}``
(see :mod:`data_tools.i18n`)."""
