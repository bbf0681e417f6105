"""简体中文 messages of the course's grader (see :mod:`course.locales`): ``{English template: 中文}``, placeholders
and their formats unchanged.

Terms follow the course glossary (``zh-glossary``): 隐藏测试, 公开测试, 自动评分, 反馈, 检查点, 生成器, 判别器,
批归一化（BN）, 残差块, 亚像素卷积, 内容损失, 对抗损失… Numbers, identifiers, code, file names and commands stay as
they are, and a translation holds no code its English does not (a reason never gives the solution).
``tests/course_tests/grading/test_grading_i18n.py`` checks that every message of ``course/grading`` has its entry
here, with the same placeholders, and that every entry is used."""

MESSAGES: dict[str, str] = {
    # --- the hidden checks: talking to the student's code (student_client.py) -----------------------------------
    "an exception":
        "一个异常",
    "{what}: no usable answer":
        "{what}：没有得到可用的结果",
    "{what} could not be done":
        "无法完成 {what}",
    "{what} raised {kind}: {message}":
        "{what} 抛出了 {kind}：{message}",
    "your code could not be started for the hidden checks":
        "无法启动你的代码来运行隐藏测试",
    "took longer than {timeout:.0f} s (an endless loop?)":
        "运行超过了 {timeout:.0f} 秒（代码中有死循环？）",
    "your code ended the checking process (exit code {code})":
        "你的代码结束了检查进程（退出码 {code}）",
    "the checking process sent an answer larger than allowed":
        "检查进程发回的结果超过了允许的大小",
    "the checking process sent an answer that is not plain data":
        "检查进程发回的结果不是普通数据",
    "the checking process answered out of turn (did your code write to its output?)":
        "检查进程的回答次序不对（你的代码是否向它的输出写了内容？）",
    "{path} not found: it writes the module(s) this notebook imports; keep the assignment's notebooks together in "
    "one folder":
        "找不到 {path}：本 notebook 导入的模块是由它写出的；请把这次作业的所有 notebook 放在同一个文件夹里",
    "{notebook} has no `%%writefile {module}` cell: put the `%%writefile` lines back at the top of the cells that "
    "write it":
        "{notebook} 中没有 `%%writefile {module}` 单元格：请把 `%%writefile` 这一行放回写这个模块的单元格的第一行",
    "models.py has no class {cls}: is the `%%writefile -a models.py` line of its cell still there, and was the cell "
    "run?":
        "models.py 中没有 {cls} 类：它所在单元格的 `%%writefile -a models.py` 这一行还在吗？这个单元格运行过吗？",
    "solver.py has no function {name}":
        "solver.py 中没有函数 {name}",
    "{what} did not build a torch.nn.Module":
        "{what} 构建出来的不是 torch.nn.Module",
    "starting the next checks":
        "开始下一组检查",
    "unknown hidden check {name}":
        "未知的隐藏测试 {name}",
    "the answers of your code could not be checked ({kind})":
        "无法检查你的代码给出的结果（{kind}）",

    # --- the hidden checks: what is asked of a module (checks/) ------------------------------------------------
    "a non-tensor":
        "不是张量的对象",
    "the output":
        "输出",
    "{what} is not a tensor":
        "{what} 不是张量",
    "{what} has shape {got}, expected {want}":
        "{what} 的形状是 {got}，应为 {want}",
    "{name}.forward's output":
        "{name}.forward 的输出",
    "setting parameters of {name}":
        "设置 {name} 的参数",
    "{what} should raise ValueError":
        "{what} 应当抛出 ValueError",
    "{what} should raise ValueError ({hint})":
        "{what} 应当抛出 ValueError（{hint}）",
    "{what} should raise ValueError, raised {kind}":
        "{what} 应当抛出 ValueError，实际抛出的是 {kind}",
    "custom":
        "自定义",
    "{what}: a {kind} layer is built in __init__ but not used in forward":
        "{what}：__init__ 中构建了一个 {kind} 层，但 forward 中没有用到它",
    "{what}: a {kind} layer is built in __init__ but used {n} times in forward":
        "{what}：__init__ 中构建了一个 {kind} 层，但 forward 中用了它 {n} 次",

    # 01_models: ConvolutionalBlock
    "{name}(3, 8, kernel_size={k}, stride={stride}) maps (2, 3, 17, 16) to {got}, expected {want}":
        "{name}(3, 8, kernel_size={k}, stride={stride}) 把 (2, 3, 17, 16) 变成了 {got}，应为 {want}",
    "{name} should hold one nn.Conv2d with kernel_size={k} and stride={stride}":
        "{name} 应当包含一个 kernel_size={k}、stride={stride} 的 nn.Conv2d",
    "batch_norm=False should add no batch-norm":
        "batch_norm=False 时不应添加批归一化（BN）层",
    "activation=None should add no activation":
        "activation=None 时不应添加激活函数",
    "with activation=None the block should be a plain (linear) convolution":
        "activation=None 时，这个模块应当只是一个普通的（线性的）卷积",
    "batch_norm=True should add exactly one nn.BatchNorm2d":
        "batch_norm=True 时应当恰好添加一个 nn.BatchNorm2d",
    "batch-norm should come right after the convolution":
        "批归一化（BN）应当紧跟在卷积层之后",
    "the activation should come after the batch-norm (conv -> BN -> activation)":
        "激活函数应当放在批归一化之后（conv -> BN -> activation）",
    'activation="{act}" should add one {kind}':
        'activation="{act}" 时应当添加一个 {kind}',
    "LeakyReLU slope should be 0.2, is {slope:g}":
        "LeakyReLU 的斜率应为 0.2，实际是 {slope:g}",
    "PReLU should have a single learnable slope (nn.PReLU())":
        "PReLU 应当只有一个可学习的斜率（nn.PReLU()）",
    "tanh output should be in [-1, 1]":
        "tanh 的输出应当在 [-1, 1] 之内",
    'an unknown activation (e.g. "swish")':
        '未知的激活函数（例如 "swish"）',

    # 01_models: SubPixelConvolutionalBlock
    "scaling_factor={s} maps (2, 8, 10, 7) to {got}, expected {want}":
        "scaling_factor={s} 时把 (2, 8, 10, 7) 变成了 {got}，应为 {want}",
    "use one nn.PixelShuffle(scaling_factor)":
        "请使用一个 nn.PixelShuffle(scaling_factor)",
    "the convolution should make n_channels * scaling_factor**2 channels with the given kernel_size":
        "卷积层应当用给定的 kernel_size 输出 n_channels * scaling_factor**2 个通道",
    "a sub-pixel block ends with one nn.PReLU":
        "亚像素卷积块的最后是一个 nn.PReLU",
    "unexpected parameter count: conv (with bias) + a single-parameter PReLU":
        "参数个数不对：应为卷积层（带 bias）加上只有一个参数的 PReLU",
    "the PReLU should be applied last, after the pixel shuffle":
        "PReLU 应当放在最后，在 pixel shuffle 之后",

    # 01_models: ResidualBlock
    "a residual block keeps the shape {shape}, got {got}":
        "残差块应当保持形状 {shape} 不变，实际得到 {got}",
    "a residual block has two 3x3 convolutions":
        "残差块有两个 3x3 卷积层",
    "a residual block has 2 batch-norms, found {n}":
        "残差块有 2 个批归一化（BN）层，实际找到 {n} 个",
    "a residual block has exactly one activation, a PReLU, after the first batch-norm":
        "残差块恰好有一个激活函数：第一个批归一化之后的 PReLU",
    "unexpected parameter count for a residual block":
        "残差块的参数个数不对",
    "order: conv -> BN -> PReLU -> conv -> BN, then add the input (the second batch-norm's output is added without "
    "an activation)":
        "顺序应为 conv -> BN -> PReLU -> conv -> BN，然后加上输入（第二个批归一化的输出不经过激活函数直接相加）",
    "the input should be added to the output (identity shortcut)":
        "输入应当加到输出上（恒等跳跃连接）",

    # 01_models: SRResNet
    "SRResNet(scaling_factor={scale}) maps (2, 3, {h}, {w}) to {got}, expected {want}":
        "SRResNet(scaling_factor={scale}) 把 (2, 3, {h}, {w}) 变成了 {got}，应为 {want}",
    "scaling_factor={scale} needs {n} sub-pixel blocks of factor 2":
        "scaling_factor={scale} 需要 {n} 个放大倍数为 2 的亚像素卷积块",
    "only 2, 4, 8 are possible":
        "只能是 2、4、8",
    "SRResNet has two 9x9 convolutions: the first (3 -> 64) and the last (64 -> 3)":
        "SRResNet 有两个 9x9 卷积层：第一个（3 -> 64）和最后一个（64 -> 3）",
    "all other convolutions are 3x3":
        "其余的卷积层都是 3x3 的",
    "SRResNet() has 37 convolutions (1 + 16 x 2 + 1 + 2 + 1), found {n}":
        "SRResNet() 有 37 个卷积层（1 + 16 x 2 + 1 + 2 + 1），实际找到 {n} 个",
    "SRResNet() has 33 batch-norms (2 per residual block + 1 after the trunk; none in the first or last block or "
    "the sub-pixel blocks), found {n}":
        "SRResNet() 有 33 个批归一化（BN）层（每个残差块 2 个，残差主干之后 1 个；第一个模块、最后一个模块和亚像素"
        "卷积块中都没有），实际找到 {n} 个",
    "SRResNet() uses PReLU activations only (19 of them), found {n} PReLU":
        "SRResNet() 只使用 PReLU 激活函数（共 19 个），实际找到 {n} 个 PReLU",
    "SRResNet() should have 1,549,462 parameters, has {total:,}":
        "SRResNet() 应当有 1,549,462 个参数，实际有 {total:,} 个",
    "the output should be squashed to [-1, 1] by a final tanh":
        "输出应当由最后的 tanh 压缩到 [-1, 1] 之内",
    "the output of the first block should be added after the residual trunk (long skip connection)":
        "第一个模块的输出应当在残差主干之后加回来（长跳跃连接）",

    # 01_models: every network, recomputed by the grader with the assignment's architecture and the same weights
    "{what}: state_dict() did not return tensors":
        "{what}：state_dict() 返回的不是张量",
    "{what}: its arguments {kwargs} are not those of the assignment's {cls}":
        "{what}：参数 {kwargs} 不是作业中 {cls} 的参数",
    "{what}: the network built from these arguments does not hold these weights":
        "{what}：用这些参数构建的网络与这些权重不一致",
    "{what}'s state_dict holds {got} tensors, the assignment's {cls} {want}: no more, no fewer layers or buffers":
        "{what} 的 state_dict 中有 {got} 个张量，作业中的 {cls} 有 {want} 个：层和缓冲区（buffer）不能多也不能少",
    "{what}.forward did not answer":
        "{what}.forward 没有给出结果",
    "{what} does not compute what the assignment's {cls} computes: the assignment's architecture holding the same "
    "weights gives other outputs on fresh inputs":
        "{what} 的计算结果与作业中的 {cls} 不同：在作业规定的网络结构中放入同样的权重，对新抽取的输入得到的输出不一样",
    "{name}.forward":
        "{name} 的 forward 方法",

    # 01_models: Generator
    "the Generator should be exactly an SRResNet (same parameters)":
        "Generator 应当恰好是一个 SRResNet（参数相同）",
    "Generator needs an initialize_with_srresnet(state_dict) method":
        "Generator 需要一个 initialize_with_srresnet(state_dict) 方法",
    "after initialize_with_srresnet(sd) the generator should compute what the SRResNet computes":
        "调用 initialize_with_srresnet(sd) 之后，生成器的计算结果应当与该 SRResNet 相同",
    "Generator(scaling_factor={scale}) should upscale by {scale}":
        "Generator(scaling_factor={scale}) 应当放大 {scale} 倍",

    # 01_models: Discriminator
    "Discriminator() should have 23,565,505 parameters, has {total:,}":
        "Discriminator() 应当有 23,565,505 个参数，实际有 {total:,} 个",
    "8 convolutions with 3x3 kernels":
        "应有 8 个卷积核为 3x3 的卷积层",
    "strides should alternate 1, 2, 1, 2, ... (4 stride-2 blocks)":
        "步长应当交替为 1, 2, 1, 2, ...（4 个步长为 2 的模块）",
    "channels should be 64, 64, 128, 128, 256, 256, 512, 512":
        "通道数应为 64, 64, 128, 128, 256, 256, 512, 512",
    "batch-norm on every convolution block except the first":
        "除第一个卷积模块外，每个卷积模块都有批归一化（BN）",
    "LeakyReLU(0.2) after each of the 8 blocks and after the first dense layer":
        "8 个模块之后以及第一个全连接层之后各有一个 LeakyReLU(0.2)",
    "dense layers: Linear(512 * 6 * 6, fc_size) then Linear(fc_size, 1)":
        "全连接层：先是 Linear(512 * 6 * 6, fc_size)，然后是 Linear(fc_size, 1)",
    "return logits: no sigmoid inside the discriminator (BCEWithLogitsLoss)":
        "请返回 logits：判别器内部不要有 sigmoid（BCEWithLogitsLoss）",
    "a (2, 3, {h}, {w}) input should give logits (2, 1), got {got}":
        "形状为 (2, 3, {h}, {w}) 的输入应当得到形状为 (2, 1) 的 logits，实际得到 {got}",
    "the output should be the last dense layer's raw output (a logit), with nothing applied after it":
        "输出应当是最后一个全连接层的原始输出（logit），之后不再做任何运算",
    "batch-norm belongs to blocks 2-8 (the first block has none)":
        "批归一化（BN）属于第 2 到第 8 个模块（第一个模块没有）",
    "the last batch-norm is not used in forward":
        "forward 中没有用到最后一个批归一化层",
    "the first dense layer should get the flattened 6x6 adaptive *average* pool of the last block's output":
        "第一个全连接层的输入应当是最后一个模块的输出经过 6x6 自适应*平均*池化再展平的结果",
    "apply LeakyReLU(0.2) between the two dense layers":
        "两个全连接层之间要使用 LeakyReLU(0.2)",

    # --- 02_solver: train_srresnet_epoch ------------------------------------------------------------------------
    "the training epoch's recorded steps could not be read":
        "无法读取训练 epoch 中记录下来的各次更新",
    "{what} is a tensor: return a Python number (e.g. loss.item())":
        "{what} 是张量：请返回 Python 数值（例如 loss.item()）",
    "optimizer.step() ran {steps} times for {n} batches: step once per batch":
        "{n} 个 batch 中 optimizer.step() 运行了 {steps} 次：每个 batch 应当更新一次",
    "the loss is an L1 loss: use the pixel MSE (F.mse_loss)":
        "损失是 L1 损失：请使用像素空间的 MSE 损失（F.mse_loss）",
    "HR is rescaled: model output and HR are both in [-1, 1]; do not rescale them":
        "HR 被重新缩放了：模型输出和 HR 都在 [-1, 1] 之内，不要对它们做缩放",
    "the first batch's gradient is not that of the pixel MSE between model(lr) and hr ({why})":
        "第一个 batch 的梯度不是 model(lr) 与 hr 之间像素空间 MSE 损失的梯度（{why}）",
    "the first batch's gradient is not that of the pixel MSE between model(lr) and hr":
        "第一个 batch 的梯度不是 model(lr) 与 hr 之间像素空间 MSE 损失的梯度",
    "gradients accumulate across batches: call optimizer.zero_grad() for every batch":
        "梯度在各个 batch 之间累加了：每个 batch 都要调用 optimizer.zero_grad()",
    "the gradient of batch {k} is not the pixel-MSE gradient of that batch":
        "第 {k} 个 batch 的梯度不是该 batch 像素空间 MSE 损失的梯度",
    "the model's parameters after the epoch differ from one SGD step per batch on the pixel MSE":
        "这个 epoch 之后模型的参数与“每个 batch 在像素空间 MSE 损失上做一次 SGD 更新”的结果不同",
    "the returned mean loss":
        "返回的平均损失",
    "return the mean loss as a number":
        "请以数值形式返回平均损失",
    "the returned value {loss:.6f} is not the mean of the batch losses ({mean:.6f})":
        "返回值 {loss:.6f} 不是各个 batch 损失的平均值（{mean:.6f}）",
    "with a GradScaler, use scaler.scale(loss).backward(), scaler.step(optimizer), scaler.update() per batch":
        "使用 GradScaler 时，每个 batch 都要调用 scaler.scale(loss).backward()、scaler.step(optimizer)、"
        "scaler.update()",
    "with a GradScaler the parameters should end as without one":
        "使用 GradScaler 时，最终的参数应当与不使用时相同",

    # --- 02_solver: train_srgan_epoch ---------------------------------------------------------------------------
    "the discriminator is in eval mode during the generator step: keep it in train mode (its batch-norm uses the "
    "batch statistics)":
        "更新生成器时判别器处于 eval 模式：请让它保持 train 模式（它的批归一化使用当前 batch 的统计量）",
    "the content loss does not reach the generator: SR is detached (or computed without gradient) in the content "
    "loss":
        "内容损失没有传到生成器：内容损失中的 SR 被 detach 了（或是在不计算梯度的情况下算出的）",
    "the adversarial loss does not reach the generator: SR is detached before the discriminator in the generator's "
    "loss":
        "对抗损失没有传到生成器：生成器的损失中，SR 在送入判别器之前被 detach 了",
    "the VGG input normalisation is applied to SR only: convert HR the same way":
        "VGG 的输入归一化只用在了 SR 上：请用同样的方式转换 HR",
    "the VGG input normalisation is applied to HR only: convert SR the same way":
        "VGG 的输入归一化只用在了 HR 上：请用同样的方式转换 SR",
    "MSE between the VGG features of SR and HR, each converted with convert_image(x, '[-1, 1]', 'imagenet-norm')":
        "SR 与 HR 的 VGG 特征之间的 MSE 损失（两者都先用 convert_image(x, '[-1, 1]', 'imagenet-norm') 转换）",
    "pixel MSE between SR and HR (no VGG given)":
        "SR 与 HR 之间像素空间的 MSE 损失（没有给出 VGG 时）",
    "the generator's gradient is wrong: its loss is content + beta * adversarial, with content = {what} and "
    "adversarial = BCE-with-logits of D(sr) against 1":
        "生成器的梯度不对：它的损失是 content + beta * adversarial，其中 content 为{what}，adversarial 为 D(sr) "
        "对目标 1 的 BCE-with-logits",
    "the generator's gradient is wrong: {why}":
        "生成器的梯度不对：{why}",
    "optimizer_g stepped {steps} times for {n} batches: once per batch":
        "{n} 个 batch 中 optimizer_g 更新了 {steps} 次：每个 batch 应当更新一次",
    "optimizer_d stepped {steps} times for {n} batches: once per batch":
        "{n} 个 batch 中 optimizer_d 更新了 {steps} 次：每个 batch 应当更新一次",
    "the discriminator's loss reaches the generator: give the discriminator sr.detach()":
        "判别器的损失传到了生成器：请把 sr.detach() 送入判别器",
    "the generator's loss does not reach the generator's output":
        "生成器的损失没有传到生成器的输出",
    "the VGG must stay frozen: no gradient for its parameters":
        "VGG 必须保持冻结：它的参数不应有梯度",
    "the discriminator's gradient is wrong: BCE-with-logits of D(hr) against 1 (real) plus of D(sr.detach()) "
    "against 0 (fake), with D called separately on each":
        "判别器的梯度不对：应为 D(hr) 对目标 1（真实）的 BCE-with-logits 加上 D(sr.detach()) 对目标 0（生成）的 "
        "BCE-with-logits，两者分别调用 D",
    "generator":
        "生成器",
    "discriminator":
        "判别器",
    "the {net}'s gradients accumulate across batches: zero them every batch":
        "{net}的梯度在各个 batch 之间累加了：每个 batch 都要清零",
    "the {net}'s gradient at batch {k} is wrong (is one optimizer stepped with the other network's loss?)":
        "{net}在第 {k} 个 batch 的梯度不对（是否用另一个网络的损失更新了这个优化器？）",
    "the parameters after the epoch differ from one generator and one discriminator step per batch":
        "这个 epoch 之后的参数与“每个 batch 更新一次生成器、一次判别器”的结果不同",
    'return a dict with keys "content", "adversarial", "generator", "discriminator"':
        '请返回一个键为 "content"、"adversarial"、"generator"、"discriminator" 的 dict',
    'the returned "{key}" loss':
        '返回的 "{key}" 损失',
    'the returned "{key}" loss should be a number':
        '返回的 "{key}" 损失应当是数值',
    'the returned "{key}" loss {got:.6f} is not the mean of the batch values ({mean:.6f})':
        '返回的 "{key}" 损失 {got:.6f} 不是各个 batch 数值的平均值（{mean:.6f}）',
    "with GradScalers, use scaler_g for the generator's step and scaler_d for the discriminator's: "
    "scale(loss).backward(), step(optimizer), update() once per batch each":
        "使用 GradScaler 时，生成器的更新用 scaler_g，判别器的更新用 scaler_d：每个 batch 各调用一次 "
        "scale(loss).backward()、step(optimizer)、update()",
    "with GradScalers the parameters should end as without them":
        "使用 GradScaler 时，最终的参数应当与不使用时相同",

    # --- 04_test and 05_super_resolution: what the graded run wrote ---------------------------------------------
    "{path} is a link, not a folder of the submission":
        "{path} 是一个链接，不是提交的作业中的文件夹",
    "{path} is missing or not a plain file":
        "{path} 不存在或不是普通文件",
    "{path} is not a plain file":
        "{path} 不是普通文件",
    "{path} is larger than {mb} MB":
        "{path} 大于 {mb} MB",
    "the {cls} of {path}":
        "{path} 中的 {cls}",
    "{path} is not a readable checkpoint of tensors: run notebook 03_train again":
        "{path} 不是可以读取的、由张量组成的检查点：请重新运行 notebook 03_train",
    "{path} does not hold model_kwargs and a model state_dict: run notebook 03_train again":
        "{path} 中没有 model_kwargs 和模型的 state_dict：请重新运行 notebook 03_train",
    "{path} does not say it holds a {cls} (arch): run notebook 03_train again":
        "{path} 没有注明其中保存的是 {cls}（arch）：请重新运行 notebook 03_train",
    "building the {name} model of the checkpoint":
        "构建检查点中的 {name} 模型",
    "loading {path}":
        "加载 {path}",
    "results/test_table.csv is missing: run the table cell":
        "缺少 results/test_table.csv：请运行生成表格的单元格",
    "results/test_table.csv: unexpected columns":
        "results/test_table.csv：列不符合要求",
    "{set}/{method}: the table's psnr/ssim are not numbers":
        "{set}/{method}：表格中的 psnr/ssim 不是数值",
    "{set}/{method}: the table says {got_psnr:.2f} dB / {got_ssim:.4f}, recomputed with the kit's convention: "
    "{psnr:.2f} dB / {ssim:.4f} (check evaluate())":
        "{set}/{method}：表格中是 {got_psnr:.2f} dB / {got_ssim:.4f}，按本套件的约定重新计算得到 "
        "{psnr:.2f} dB / {ssim:.4f}（请检查 evaluate()）",
    "rows missing for {methods} on the test sets":
        "测试集上缺少 {methods} 的行",
    "{path} is missing":
        "缺少 {path}",
    "{path} is not a readable PNG image":
        "{path} 不是可以读取的 PNG 图像",
    "{path} is {got}, expected {want}":
        "{path} 的形状是 {got}，应为 {want}",
    "{path} is not the output of {label} for that image (max difference {diff} levels)":
        "{path} 不是 {label} 对这张图像的输出（最大相差 {diff} 个灰度级）",

    # --- the grader's notes in a graded notebook (its nbgrader preprocessors) -----------------------------------
    "hidden check {name!r} failed: {reason}":
        "隐藏测试 {name!r} 未通过：{reason}",
    "no verdict":
        "没有给出判定结果",
    "No reply from kernel before timeout":
        "超时之前内核没有响应",
    "not run: the kernel stopped answering after a cell timed out":
        "未运行：有单元格超时后，内核不再响应",
    "[output truncated by the grader: at most {cell} bytes per cell and {notebook} per notebook]":
        "[输出已被评分程序截断：每个单元格最多保留 {cell} 字节，整个 notebook 最多保留 {notebook} 字节]",
    "[output removed by the grader: only text and images are kept]":
        "[输出已被评分程序删除：只保留文本和图片]",
    "[output removed by the grader: the notebook was too large]":
        "[输出已被评分程序删除：notebook 太大了]",
    "wrote {total} MB into its grading folder (at most {limit} MB): its files were removed and the notebook "
    "scores 0":
        "向评分文件夹写入了 {total} MB（最多 {limit} MB）：其中的文件已被删除，本 notebook 记 0 分",

    # --- the submitted outputs shown before each manually graded answer (submitted_outputs.py) ------------------
    "# SUBMITTED OUTPUTS (the student's own run, shown as submitted; this cell is not run by the grader)":
        "# 提交时的输出（学生自己运行的结果，按提交时的原样显示；评分程序不运行这个单元格）",
    "[submitted output too large to show]":
        "[提交时的输出太大，无法显示]",
    "#{n} (a cell the student added)":
        "#{n}（学生自己添加的单元格）",
    "--- submitted output of cell {which} ---":
        "--- 单元格 {which} 提交时的输出 ---",
    "submitted without outputs: {cells}":
        "提交时缺少输出：{cells}",
    "(no submitted output in the cells above)":
        "（上面的单元格提交时没有输出）",
    "--- the outputs inside the cells above are the grader's re-run (tiny grading configuration): they decided the "
    "automatic points ---":
        "--- 上面各单元格中的输出是评分程序重新运行的结果（极小的评分配置）：自动评分的分数由它们决定 ---",
    "[submitted error] {ename}: {evalue}":
        "[提交时的错误] {ename}: {evalue}",
    "[submitted output of kind {kind!r} not shown]":
        "[未显示提交时 {kind!r} 类型的输出]",

    # --- the written report shown in the graded notebook (report_cell.py) ---------------------------------------
    "WRITTEN REPORT (handed in by the student, shown as submitted; this cell is not graded by itself)":
        "实验报告（由学生提交，按提交时的原样显示；这个单元格本身不评分）",
    "NO REPORT HANDED IN":
        "未提交实验报告",
    "**{label}**: neither `report.md` nor `report.pdf` is in `{folder}/`.":
        "**{label}**：`{folder}/` 中既没有 `report.md`，也没有 `report.pdf`。",
    "`report.pdf` was handed in ({size}): open `{path}` (it is not shown here).":
        "已提交 `report.pdf`（{size}）：请打开 `{path}`（这里不显示它）。",
    "`report.md` could not be read ({error}).":
        "无法读取 `report.md`（{error}）。",
    "[... report cut at {n} characters]":
        "[…… 报告在第 {n} 个字符处截断]",
    "*[picture {name!r}: `{path}` in the hand-in]*":
        "*[图片 {name!r}：提交材料中的 `{path}`]*",
    "`report.md` ({size}), as written:":
        "`report.md`（{size}），原文如下：",

    # --- the feedback page (feedback_kit.py, templates/feedback_kit/index.html.j2) ------------------------------
    "[hidden test]":
        "[隐藏测试]",
    "{notebook} (Score: {score} / {max_score})":
        "{notebook}（得分：{score} / {max_score}）",
    "{notebook} (Score: {score} / {max_score}; {pending})":
        "{notebook}（得分：{score} / {max_score}；{pending}）",
    "{n} answer awaiting manual grading":
        "{n} 个答案等待人工评分",
    "{n} answers awaiting manual grading":
        "{n} 个答案等待人工评分",
    "awaiting manual grading":
        "等待人工评分",
    "({points} points)":
        "（{points} 分）",
    "Score: {score} / {points}":
        "得分：{score} / {points}",
    "Test cell":
        "测试单元格",
    "Coding free-response":
        "编程作答",
    "Written response":
        "书面作答",
    "Task":
        "任务",
    "Comment":
        "评语",
    "Comments:":
        "评语：",
    "Late submission penalty (Score: -{penalty})":
        "迟交扣分（得分：-{penalty}）",
    "Student's answer":
        "学生的答案",
    "Student's task":
        "学生的任务",
    "Grade cell: {grade_id}":
        "评分单元格：{grade_id}",
    "(Top)":
        "（回到顶部）",
}
