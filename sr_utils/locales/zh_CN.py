"""简体中文 messages of ``sr_utils`` (see :mod:`sr_utils.i18n`): ``{English template: 中文}``, placeholders unchanged.

Terms follow the course glossary (``zh-glossary``): 低分辨率图像 (LR), 高分辨率图像 (HR), 生成器, 判别器, 检查点…"""

MESSAGES: dict[str, str] = {
}
