"""简体中文 messages of ``data_tools`` (see :mod:`data_tools.i18n`): ``{English template: 中文}``, placeholders
unchanged. Terms follow the course glossary (``zh-glossary``); numbers, file names and commands stay as they are."""

MESSAGES: dict[str, str] = {
    # --- samples: the bundled photos ----------------------------------------------------------------------------
    "unknown sample photo {name!r}; available: {known}":
        "未知的示例照片 {name!r}；可用的有：{known}",
    "sample photo {name!r} is not in this {package} install ({path}); reinstall {package} or use another photo":
        "当前安装的 {package} 中没有示例照片 {name!r}（{path}）；请重新安装 {package}，或改用别的照片",
    "samples":
        "示例照片",
    "preparing the sample data failed:":
        "准备示例数据失败：",

    # --- prepare: lists and caches ------------------------------------------------------------------------------
    "{path}: cannot read image header ({error})":
        "{path}：无法读取图像文件头（{error}）",
    "{folder}: no PNG images found (is the folder empty or still downloading?)":
        "{folder}：没有找到 PNG 图像（文件夹是空的，还是仍在下载？）",
    "check {split} x{scale}":
        "检查 {split} x{scale}",
    "{path}: HR {w}x{h} is smaller than the scale {scale}":
        "{path}：高分辨率图像 {w}x{h} 比缩放倍数 {scale} 还小",
    "{path}: missing LR for {hr} (run without --no-generate to make it)":
        "{path}：缺少 {hr} 对应的低分辨率图像（去掉 --no-generate 再运行即可生成它）",
    "{path}: LR is {got_w}x{got_h}, expected {want_w}x{want_h} (HR {hr} {w}x{h} / {scale}, after a top-left "
    "modcrop); replace it, or delete it and let `prepare` regenerate it":
        "{path}：低分辨率图像为 {got_w}x{got_h}，应为 {want_w}x{want_h}（高分辨率图像 {hr} {w}x{h} 从左上角裁剪到 "
        "{scale} 的整数倍之后再除以 {scale}）；请替换它，或删除它，让 `prepare` 重新生成",
    "{split} x{scale}: {n} problem(s):":
        "{split} x{scale}：发现 {n} 个问题：",
    "cache {split} x{scale}":
        "缓存 {split} x{scale}",
    "{path}: LR {lr} is not HR {hr} / {scale}":
        "{path}：低分辨率图像 {lr} 不等于高分辨率图像 {hr} / {scale}",
    "data folder {folder} does not exist: run `python -m data_tools samples` or `download` first, or pass "
    "--data-dir / set SR_DATA_DIR":
        "数据文件夹 {folder} 不存在：请先运行 `python -m data_tools samples` 或 `download`，"
        "或者传入 --data-dir / 设置 SR_DATA_DIR",
    "{folder}: no dataset found (expected <Set>/HR/*.png or DIV2K_train_HR/*.png)":
        "{folder}：没有找到数据集（应为 <Set>/HR/*.png 或 DIV2K_train_HR/*.png）",
}
