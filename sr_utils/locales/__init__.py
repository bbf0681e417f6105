"""Message catalogues of ``sr_utils``: one module per language, ``MESSAGES = {English template: translation}``
(see :mod:`sr_utils.i18n`)."""
