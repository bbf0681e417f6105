"""简体中文 messages of ``sr_utils`` (see :mod:`sr_utils.i18n`): ``{English template: 中文}``, placeholders unchanged.

Terms follow the course glossary (``zh-glossary``): 低分辨率图像 (LR), 高分辨率图像 (HR), 生成器, 判别器, 检查点…
Numbers, identifiers, file names and commands stay as they are. ``tests/sr_utils_tests/test_i18n_messages.py`` checks that every
``tr("...")`` of ``sr_utils`` has its entry here, with the same placeholders, and that every entry is used."""

MESSAGES: dict[str, str] = {
    # --- notebook: the modules of %%writefile cells, output paths, hidden checks --------------------------------
    "{path} not found: it writes the module(s) this notebook imports; keep the assignment's notebooks together in "
    "one folder":
        "找不到 {path}：本 notebook 导入的模块是由它写出的；请把这次作业的所有 notebook 放在同一个文件夹里",
    "{notebook} has no `%%writefile {module}` cell: put the `%%writefile` lines back at the top of the cells that "
    "write it":
        "{notebook} 中没有 `%%writefile {module}` 单元格：请把 `%%writefile` 这一行放回写这个模块的单元格的第一行",
    "regenerated {modules} from {notebook}":
        "已根据 {notebook} 重新生成 {modules}",
    "{path} not found: run the `%%writefile {name}.py` cells first":
        "找不到 {path}：请先运行 `%%writefile {name}.py` 所在的单元格",
    "output_path({relative!r}): give a path inside the notebook's folder, e.g. 'checkpoints/srresnet'":
        "output_path({relative!r})：请给出 notebook 所在文件夹之内的路径，例如 'checkpoints/srresnet'",
    "hidden check {check!r}: decided by the grader, outside this kernel":
        "隐藏测试 {check!r}：由评分程序在这个内核之外判定",
    "hidden checks are only available to the instructor's grader":
        "隐藏测试只有教师的评分程序才能运行",
    "hidden check {check!r} took longer than {timeout:.0f} s (an endless loop?)":
        "隐藏测试 {check!r} 运行超过了 {timeout:.0f} 秒（代码中有死循环？）",
    "no verdict":
        "没有给出判定结果",
    "hidden check {check!r} failed: {reason}":
        "隐藏测试 {check!r} 未通过：{reason}",

    # --- trained: the generators of notebook 03 -----------------------------------------------------------------
    "notebook 03_train did not produce checkpoints/{stage}/best.pth: fix 03_train first (run it to the end; its "
    "first error is the one to fix)":
        "notebook 03_train 没有生成 checkpoints/{stage}/best.pth：请先修正 03_train（把它从头运行到尾；"
        "要修正的是它报出的第一个错误）",
    "{message}. While grading, {stand_in!r} (bicubic + sharpening, not a trained model) takes its place, so that "
    "this notebook's own code is graded.":
        "{message}。评分时由 {stand_in!r}（双三次插值加锐化，不是训练得到的模型）代替它，"
        "以便本 notebook 自己的代码照常评分。",

    # --- checkpoint ---------------------------------------------------------------------------------------------
    "checkpoint {path} does not exist":
        "检查点 {path} 不存在",
    "{path} holds pickled Python objects, not just tensors and plain containers (e.g. a whole model saved "
    "tutorial-style), which torch.load refuses with weights_only=True. If you trust the file, convert it once: "
    "ckpt = torch.load(path, weights_only=False); torch.save({{'model': ckpt['model'].state_dict()}}, "
    "'converted.pth') (original error: {error})":
        "{path} 中保存的是用 pickle 序列化的 Python 对象，而不只是张量和普通容器（例如按原教程的写法保存了整个模型），"
        "torch.load 在 weights_only=True 时拒绝读取这样的文件。如果你信任这个文件，可以把它转换一次："
        "ckpt = torch.load(path, weights_only=False); torch.save({{'model': ckpt['model'].state_dict()}}, "
        "'converted.pth')（原始错误：{error}）",
    "{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {error}":
        "{path} 不是可以读取的 PyTorch 检查点（文件不完整或已损坏？）：{error}",
    "{path} has no {keys} entry: it was not written by this kit's trainer (or by an older version that did not "
    "record the architecture); train it again with notebook 03 or `python -m sr_utils train-srresnet`":
        "{path} 中没有 {keys} 项：它不是本套件的训练器写出的（或是由尚未记录网络结构的旧版本写出的）；"
        "请用 notebook 03 或 `python -m sr_utils train-srresnet` 重新训练",
    "{path}: unknown architecture {arch!r}, expected one of {known}":
        "{path}：未知的网络结构 {arch!r}，应为 {known} 之一",
    "{path} holds a {arch}, but {models} defines no class {arch}":
        "{path} 中保存的是 {arch}，但 {models} 没有定义 {arch} 类",
    "{path} does not fit the {arch} of {models} built with {kwargs}: {error}":
        "{path} 与 {models} 中用 {kwargs} 构建的 {arch} 不匹配：{error}",

    # --- lists: where the prepared data is ----------------------------------------------------------------------
    "run `python -m data_tools samples` (the bundled photos, offline) and `python -m data_tools prepare`":
        "请运行 `python -m data_tools samples`（套件自带的照片，无需联网）和 `python -m data_tools prepare`",
    "list {path} does not exist: {hint}":
        "列表文件 {path} 不存在：{hint}",
    "no training list ({files}) in {folder}: {hint}":
        "{folder} 中没有训练集列表（{files}）：{hint}",
    "no validation list ({files}) in {folder}: {hint}":
        "{folder} 中没有验证集列表（{files}）：{hint}",
    "no test list in {folder}: {hint}":
        "{folder} 中没有测试集列表：{hint}",
    "neither Set5 nor the bundled test photos are prepared in {folder}: {hint}":
        "{folder} 中既没有准备好 Set5，也没有准备好套件自带的测试照片：{hint}",

    # --- datasets -----------------------------------------------------------------------------------------------
    "decoded cache {folder} is missing: run `python -m data_tools prepare --cache {split}` to build it":
        "缺少解码缓存 {folder}：请运行 `python -m data_tools prepare --cache {split}` 生成它",
    "crop_size {crop_size} is not a multiple of the scale {scale}":
        "crop_size {crop_size} 不是缩放倍数 {scale} 的整数倍",
    "lr_convention must be one of {known}, got {value!r}":
        "lr_convention 必须是 {known} 之一，得到的是 {value!r}",
    "hr_convention must be one of {known}, got {value!r}":
        "hr_convention 必须是 {known} 之一，得到的是 {value!r}",
    "patches_per_image must be >= 1, got {value}":
        "patches_per_image 必须 >= 1，得到的是 {value}",
    "cache of {split} is out of date with {list_file}: run `python -m data_tools prepare` again":
        "{split} 的缓存与 {list_file} 不一致，已经过时：请重新运行 `python -m data_tools prepare`",
    "{split}: images smaller than the {crop_size}px crop: {images}":
        "{split}：以下图像比 {crop_size} 像素的裁剪块还小：{images}",
    "index out of range for {n} patches":
        "索引超出范围（共 {n} 个图像块）",
    "{path}: LR {lr_w}x{lr_h} is larger than HR {hr_w}x{hr_h} / {scale}":
        "{path}：低分辨率图像 {lr_w}x{lr_h} 大于高分辨率图像 {hr_w}x{hr_h} / {scale}",

    # --- color --------------------------------------------------------------------------------------------------
    "{fn}: expected an (H, W, 3) RGB array, got shape {shape}":
        "{fn}：需要形状为 (H, W, 3) 的 RGB 数组，实际形状为 {shape}",
    "{fn}: expected uint8 (0..255) or float ([0, 1]) input, got {dtype}":
        "{fn}：输入应为 uint8（0..255）或浮点数（[0, 1]），实际为 {dtype}",
    "rgb_to_y: expected a (..., 3, H, W) tensor, got shape {shape}":
        "rgb_to_y：需要形状为 (..., 3, H, W) 的张量，实际形状为 {shape}",
    "rgb_to_y: expected a float tensor in [0, 1], got {dtype}":
        "rgb_to_y：需要取值在 [0, 1] 内的浮点张量，实际为 {dtype}",
    "ycbcr_to_rgb: expected an (H, W, 3) array, got shape {shape}":
        "ycbcr_to_rgb：需要形状为 (H, W, 3) 的数组，实际形状为 {shape}",
    "image file not found: {path}":
        "找不到图像文件：{path}",
    "cannot read image {path}: {error} (truncated or corrupt file?)":
        "无法读取图像 {path}：{error}（文件不完整或已损坏？）",
    "tensor_to_pil: expected a (3, H, W) tensor in [0, 1], got shape {shape}":
        "tensor_to_pil：需要取值在 [0, 1] 内、形状为 (3, H, W) 的张量，实际形状为 {shape}",
    "convert_image: source must be one of {known}, got {value!r}":
        "convert_image：source 必须是 {known} 之一，实际为 {value!r}",
    "convert_image: target must be one of {known}, got {value!r}":
        "convert_image：target 必须是 {known} 之一，实际为 {value!r}",
    "convert_image: source {source!r} needs a float tensor (3, H, W) or (N, 3, H, W), got {got}":
        "convert_image：source 为 {source!r} 时需要形状为 (3, H, W) 或 (N, 3, H, W) 的浮点张量，实际为 {got}",

    # --- metrics and tables -------------------------------------------------------------------------------------
    "Y channel (BT.601, MATLAB rgb2ycbcr on uint8, rounded), SR quantised to uint8, {scale} px shaved per border; "
    "PSNR peak 255; SSIM 11x11 Gaussian (sigma 1.5), 'valid'":
        "Y 通道（亮度通道；BT.601，即 MATLAB 对 uint8 图像的 rgb2ycbcr，取整），超分辨率图像先量化为 uint8，"
        "每条边裁去 {scale} 像素；PSNR 峰值取 255；SSIM 用 11x11 高斯窗（sigma 1.5），只取 'valid' 区域",
    "{fn}: expects 2-D (H, W) arrays in 0..255 (e.g. Y channels), got {a} and {b}":
        "{fn}：需要取值在 0..255 内的二维 (H, W) 数组（例如 Y 通道），实际为 {a} 和 {b}",
    "{fn}: images differ in size: {a} vs {b}":
        "{fn}：两幅图像的尺寸不同：{a} 与 {b}",
    "{fn}: crop_border must be >= 0, got {crop_border}":
        "{fn}：crop_border 必须 >= 0，实际为 {crop_border}",
    "{fn}: nothing left after shaving {crop_border} px from a {shape} image":
        "{fn}：从 {shape} 的图像每条边裁去 {crop_border} 像素之后，什么也不剩了",
    "ssim: needs at least 11x11 pixels after shaving, got {shape}":
        "ssim：裁边之后至少需要 11x11 像素，实际为 {shape}",
    "expected an (H, W, 3) RGB or (H, W) grey image, got shape {shape}":
        "需要 (H, W, 3) 的 RGB 图像或 (H, W) 的灰度图像，实际形状为 {shape}",
    "evaluate_sr: SR {sr} and HR {hr} differ in channels":
        "evaluate_sr：超分辨率图像 {sr} 与高分辨率图像 {hr} 的通道数不同",
    "evaluate_sr: SR {sr_w}x{sr_h} does not match HR {hr_w}x{hr_h} at x{scale}: SR must be HR cropped to a multiple "
    "of {scale}":
        "evaluate_sr：在 {scale} 倍下，超分辨率图像 {sr_w}x{sr_h} 与高分辨率图像 {hr_w}x{hr_h} 不匹配："
        "超分辨率图像的尺寸必须等于高分辨率图像裁剪到 {scale} 的整数倍之后的尺寸",
    "Evaluation: {convention}.":
        "评价方式：{convention}。",
    "set":
        "数据集",
    "method":
        "方法",
    "image":
        "图像",
    "psnr":
        "PSNR (dB)",
    "ssim":
        "SSIM",
    "lpips":
        "LPIPS",
    "mean":
        "平均值",
    "{split} chose the saved model (best.pth): it is a validation, not a test, result.":
        "保存的模型（best.pth）是按 {split} 选出的：这一行是验证结果，不是测试结果。",
    "LPIPS (AlexNet v0.1, RGB, same shave): lower is better.":
        "LPIPS（AlexNet v0.1，RGB，裁边方式相同）：越低越好。",
    "evaluate {split}":
        "评价 {split}",

    # --- plotting: figure titles, axis labels, legends ----------------------------------------------------------
    "training":
        "训练",
    "{title}: losses":
        "{title}：损失",
    "validation Y-PSNR (dB)":
        "验证集 Y 通道 PSNR (dB)",
    "validation Y-PSNR":
        "验证集 Y 通道 PSNR",
    "iteration":
        "迭代次数",
    "mse":
        "MSE 损失",
    "l1":
        "L1 损失",
    "content":
        "内容损失",
    "adversarial":
        "对抗损失",
    "generator":
        "生成器损失",
    "discriminator":
        "判别器损失",
    "bicubic":
        "双三次插值",
    "HR":
        "高分辨率图像（HR）",
    "{model} (stand-in)":
        "{model}（评分用的替代模型）",
    "{name}: {label}":
        "{name}：{label}",

    # --- config and trainer -------------------------------------------------------------------------------------
    "unknown profile {profile!r}: {known}":
        "未知的 profile {profile!r}：可选 {known}",
    "unknown stage {stage!r}: srresnet or srgan":
        "未知的训练阶段 {stage!r}：应为 srresnet 或 srgan",
    "unknown setting(s) {wrong}; known: {known}":
        "未知的设置项 {wrong}；可用的设置项：{known}",
    "{name}={value!r}: use one of {allowed}":
        "{name}={value!r}：请使用 {allowed} 之一",
    "{name}={value!r}: must be > 0":
        "{name}={value!r}：必须 > 0",
    "{name}={value!r}: must be >= 0":
        "{name}={value!r}：必须 >= 0",
    "ema_decay={value!r}: 0 (off) or a decay in (0, 1), e.g. 0.999":
        "ema_decay={value!r}：应为 0（关闭）或 (0, 1) 内的衰减系数，例如 0.999",
    "gamma={gamma!r} and plateau_min_factor={factor!r}: in (0, 1]":
        "gamma={gamma!r} 和 plateau_min_factor={factor!r}：都必须在 (0, 1] 内",
    "plateau_patience={value!r}: at least 1 validation":
        "plateau_patience={value!r}：至少为 1 次验证",
    "g_pretrain is for stage srgan (SRResNet training is already generator-only)":
        "g_pretrain 只用于 srgan 阶段（SRResNet 的训练本来就只训练生成器）",
    "decay_at={value!r}: fractions of `iterations`, each in [0, 1]":
        "decay_at={value!r}：应为 `iterations` 的比例，每个都在 [0, 1] 内",
    "SR_KIT_PROFILE={value!r} is not a profile: use one of {known}":
        "SR_KIT_PROFILE={value!r} 不是一个 profile：请使用 {known} 之一",
    "pixel_loss={loss!r} needs your solver's {function} to take a pixel_loss argument: add `pixel_loss=\"mse\"` to "
    "its parameters and use F.l1_loss when it is \"l1\" (notebook 02 writes solver.py)":
        "pixel_loss={loss!r} 要求你的 solver 中的 {function} 接受 pixel_loss 参数：请在它的参数中加上 "
        "`pixel_loss=\"mse\"`，并在它为 \"l1\" 时使用 F.l1_loss（solver.py 由 notebook 02 写出）",
    "batch_size {batch_size} is not divisible by the {world} processes":
        "batch_size {batch_size} 不能被进程数 {world} 整除",
    "VGG54 content loss needs the ImageNet VGG19 weights, which are not on this machine (see sr_utils.vgg for where "
    "to put vgg19-dcbb9e9d.pth). Use content=mse for the paper's SRGAN-MSE variant (pixel content loss + "
    "adversarial) instead; random VGG features are never used.":
        "VGG54 内容损失需要在 ImageNet 上预训练好的 VGG19 权重，但这台机器上没有（vgg19-dcbb9e9d.pth 应放在哪里，"
        "见 sr_utils.vgg 的说明）。请改用 content=mse，即论文中的 SRGAN-MSE 变体（图像像素空间的内容损失 + "
        "对抗损失）；本套件从不使用随机初始化的 VGG 特征。",
    "resumed {stage} at step {step} from {path}":
        "已从 {path} 恢复 {stage} 的训练，从第 {step} 次迭代继续",
    "validation PSNR has not improved for {patience} validations: learning rate x{gamma}":
        "验证集 PSNR 已连续 {patience} 次验证没有提高：学习率乘以 {gamma}",

    # --- experiments: named runs --------------------------------------------------------------------------------
    "run name {name!r}: use letters, digits, '-', '_' or '.' (it becomes a folder name)":
        "运行名称 {name!r}：只能使用字母、数字、'-'、'_' 或 '.'（它会用作文件夹名）",
    "no run {name!r}; runs: {runs}":
        "没有名为 {name!r} 的运行；现有的运行：{runs}",
    "none yet":
        "暂无",
    "| run | stage | task | what changed | steps | best iteration | val PSNR (dB) | time |":
        "| 运行 | 阶段 | 任务 | 改动 | 迭代次数 | 最佳迭代 | 验证集 PSNR (dB) | 用时 |",

    # --- vgg: the ImageNet VGG19 weights ------------------------------------------------------------------------
    "torch hub cache":
        "torch hub 缓存",
    "ImageNet VGG19 weights ({file}) not found. Looked at, in order:":
        "找不到在 ImageNet 上预训练好的 VGG19 权重（{file}）。依次查找过：",
    "not a file":
        "不是文件",
    "does not exist":
        "不存在",
    "  - ${env}: not set":
        "  - ${env}：未设置",
    "Nothing is downloaded automatically. To get the file, either:":
        "本套件不会自动下载任何文件。获取这个文件的方法有：",
    "  - download {url} (548 MB) and put it at {hub},":
        "  - 下载 {url}（548 MB），放在 {hub}，",
    "    or anywhere and set {env}=/path/to/{file};":
        "    或放在任意位置，并设置 {env}=/path/to/{file}；",
    "  - or, on a machine with internet, run python -c 'import torchvision; "
    "torchvision.models.vgg19(weights=\"IMAGENET1K_V1\")' which fills the torch hub cache (copy its checkpoints/ "
    "folder over if needed);":
        "  - 或者在能联网的机器上运行 python -c 'import torchvision; "
        "torchvision.models.vgg19(weights=\"IMAGENET1K_V1\")'，它会把文件存入 torch hub 缓存"
        "（必要时把其中的 checkpoints/ 文件夹复制过来）；",
    "  - or pass weights='/path/to/file.pth' (or weights=None for random weights, tests only).":
        "  - 或者传入 weights='/path/to/file.pth'（weights=None 表示随机权重，仅用于测试）。",
    "VGG19 weights file {path} does not exist (weights={weights!r}); torchvision's ImageNet file is {url}":
        "VGG19 权重文件 {path} 不存在（weights={weights!r}）；torchvision 的 ImageNet 权重文件在 {url}",
    "TruncatedVGG19: weights must be None, 'imagenet' or a path to {file}, got {type}":
        "TruncatedVGG19：weights 必须是 None、'imagenet' 或 {file} 的路径，实际为 {type}",
    "TruncatedVGG19: {name} must be an int, got {value!r}":
        "TruncatedVGG19：{name} 必须是 int，实际为 {value!r}",
    "TruncatedVGG19: i (the max-pooling block) must be in 1..5, got i={i}":
        "TruncatedVGG19：i（最大池化层所在的块）必须在 1..5 内，实际为 i={i}",
    "TruncatedVGG19: j (the convolution inside block i) must be in 1..{n} for i={i} (1..2 for blocks 1-2, 1..4 for "
    "blocks 3-5), got j={j}":
        "TruncatedVGG19：i={i} 时，j（第 i 块中的卷积层）必须在 1..{n} 内（第 1-2 块为 1..2，第 3-5 块为 1..4），"
        "实际为 j={j}",
    "TruncatedVGG19: expected a float (N, 3, H, W) RGB ImageNet-normalised tensor, got {dtype} {shape}":
        "TruncatedVGG19：需要按 ImageNet 归一化的 RGB 浮点张量 (N, 3, H, W)，实际为 {dtype} {shape}",
    "{path}: expected a VGG19 state dict (a dict of tensors), got {type}":
        "{path}：需要 VGG19 的 state dict（由张量组成的 dict），实际为 {type}",
    "{path} is not a torchvision VGG19 state dict: missing {keys}{more} ({n} of {total} keys)":
        "{path} 不是 torchvision 的 VGG19 state dict：缺少 {keys}{more}（{total} 个键中缺少 {n} 个）",
    "{path}: the VGG19 features do not match torchvision's vgg19: {error}":
        "{path}：其中的 VGG19 特征层与 torchvision 的 vgg19 不匹配：{error}",

    # --- inference ----------------------------------------------------------------------------------------------
    "super_resolve: expected an (h, w, 3) uint8 RGB image, got {shape} {dtype}":
        "super_resolve：需要 (h, w, 3) 的 uint8 RGB 图像，实际为 {shape} {dtype}",
    "{path} does not exist: give an image file or a folder of images":
        "{path} 不存在：请给出一个图像文件或一个存放图像的文件夹",
    "no image ({suffixes}) in {path}":
        "{path} 中没有图像（{suffixes}）",

    # --- lpips_metric (optional metric) -------------------------------------------------------------------------
    "LPIPS needs the lpips package: pip install lpips (or the kit's `metrics` extra, pip install -e '.[metrics]')":
        "LPIPS 需要 lpips 包：pip install lpips（或安装本套件的 `metrics` 可选依赖：pip install -e '.[metrics]'）",
    "LPIPS needs torchvision's ImageNet AlexNet weights ({file}, 233 MB), which are not on this machine (looked at "
    "{places}; ${env} set). Nothing is downloaded automatically: download {url} and put it at {hub}, or anywhere "
    "and set {env}=/path/to/{file}. PSNR/SSIM do not need it.":
        "LPIPS 需要 torchvision 在 ImageNet 上预训练好的 AlexNet 权重（{file}，233 MB），但这台机器上没有"
        "（查找过 {places}；已设置 ${env}）。本套件不会自动下载任何文件：请下载 {url}，放在 {hub}，"
        "或放在任意位置并设置 {env}=/path/to/{file}。PSNR/SSIM 不需要它。",
    "LPIPS needs torchvision's ImageNet AlexNet weights ({file}, 233 MB), which are not on this machine (looked at "
    "{places}; ${env} not set). Nothing is downloaded automatically: download {url} and put it at {hub}, or "
    "anywhere and set {env}=/path/to/{file}. PSNR/SSIM do not need it.":
        "LPIPS 需要 torchvision 在 ImageNet 上预训练好的 AlexNet 权重（{file}，233 MB），但这台机器上没有"
        "（查找过 {places}；未设置 ${env}）。本套件不会自动下载任何文件：请下载 {url}，放在 {hub}，"
        "或放在任意位置并设置 {env}=/path/to/{file}。PSNR/SSIM 不需要它。",
    "LPIPS backbone {path} does not exist":
        "LPIPS 的骨干网络权重 {path} 不存在",
    "{path} is not a torchvision AlexNet state_dict (no 'features.*' entries)":
        "{path} 不是 torchvision 的 AlexNet state_dict（没有 'features.*' 项）",
    "LPIPS: sr and hr must be (H, W, 3) uint8 RGB of one size, got {sr} {sr_dtype} and {hr} {hr_dtype}":
        "LPIPS：sr 和 hr 必须是尺寸相同的 (H, W, 3) uint8 RGB 图像，实际为 {sr} {sr_dtype} 和 {hr} {hr_dtype}",
}
