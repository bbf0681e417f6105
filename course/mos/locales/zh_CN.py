"""简体中文 of what a rater or a student reads from the MOS study (:mod:`course.mos.i18n`): ``{English template:
中文}``, placeholders and markup (``<kbd>``, ``<b>``) unchanged; ``tests/course_tests/mos/test_mos_i18n.py`` checks both.

Terms follow the course glossary (``zh-glossary``): 人工评价, 平均意见得分（MOS）, 评分者, 超分辨率图像,
高分辨率图像（HR）, 双三次插值, 训练集. The rater is addressed as 你, as in the course's notebooks; the scale is
很差 / 较差 / 一般 / 良好 / 优秀 (1–5).
"""

MESSAGES: dict[str, str] = {
    # the opinion scale (pages.scale_words)
    "bad": "很差",
    "poor": "较差",
    "fair": "一般",
    "good": "良好",
    "excellent": "优秀",
    # the calibration page
    "Calibration": "评分校准",
    "Before you start: the scale": "开始之前：了解评分标准",
    "You will see super-resolved photos one at a time and score each from 1 (bad) to 5 (excellent) with the keys "
    "<kbd>1</kbd>–<kbd>5</kbd> (or the buttons).":
        "你将逐张看到超分辨率图像，请用 <kbd>1</kbd>–<kbd>5</kbd> 键（或点击按钮）为每张图像打分：1 分为很差，"
        "5 分为优秀。",
    "You will see two super-resolved versions of the same photo side by side and pick the better one with the keys "
    "<kbd>←</kbd> / <kbd>→</kbd> (or the buttons).":
        "你将看到同一张照片的两个超分辨率版本并排显示，请用 <kbd>←</kbd> / <kbd>→</kbd> 键（或点击按钮）"
        "选出较好的一张。",
    "Judge the image as a photo: sharpness, artefacts, naturalness. Below, examples of the two ends of the scale "
    "(training photos, not the ones you will rate): on the left what a <b>1</b> looks like, on the right what a "
    "<b>5</b> looks like.":
        "请把它当作一张照片来评判，着眼于清晰度、伪影和自然程度。下面是评分标准两端的示例（取自训练集的照片，"
        "不是你要评分的图像）：左边是 <b>1</b> 分的样子，右边是 <b>5</b> 分的样子。",
    "example scored {score}": "{score} 分的示例",
    "score <b>{score}</b> ({word})": "<b>{score}</b> 分（{word}）",
    "I have looked at the examples: start rating": "我已看过示例，开始评分",
    # the rating page
    "Rate image {n} of {total}": "图像评分：第 {n} 张，共 {total} 张",
    "Image {n} of {total}": "第 {n} 张，共 {total} 张",
    "image to rate": "待评分的图像",
    "zoom: move the mouse over the photo": "局部放大：请将鼠标移到照片上",
    "Move the mouse over the photo to zoom on a crop (<kbd>z</kbd>: 2x / 4x). Score with <kbd>1</kbd>–<kbd>5</kbd>.":
        "将鼠标移到照片上，可放大查看局部（按 <kbd>z</kbd> 在 2 倍和 4 倍之间切换）。用 <kbd>1</kbd>–<kbd>5</kbd> "
        "键打分。",
    # the pairwise page
    "Compare pair {n} of {total}": "图像比较：第 {n} 组，共 {total} 组",
    "Pair {n} of {total}": "第 {n} 组，共 {total} 组",
    "left image": "左侧图像",
    "right image": "右侧图像",
    "← this one is better": "← 这张更好",
    "this one is better →": "这张更好 →",
    "Which photo looks better (sharper, fewer artefacts, more natural)? Press <kbd>←</kbd> for the left one, "
    "<kbd>→</kbd> for the right one.":
        "哪张照片看起来更好（更清晰、伪影更少、更自然）？左边的更好请按 <kbd>←</kbd>，右边的更好请按 "
        "<kbd>→</kbd>。",
    # the last page
    "Done": "已完成",
    "Thank you": "感谢参与",
    "You have rated all {total} images. Your answers are saved; you can close this page.":
        "你已为全部 {total} 张图像打分。你的评分已保存，现在可以关闭此页面。",
    "You have compared all {total} pairs. Your answers are saved; you can close this page.":
        "你已完成全部 {total} 组比较。你的选择已保存，现在可以关闭此页面。",
    # refusals (app): field names and values are the form's, left as they are
    "refused: {reason}": "请求被拒绝：{reason}",
    "the calibration page comes first": "请先完成评分校准页面，再开始评分",
    "the body is over {limit} bytes": "请求内容超过 {limit} 字节",
    "expected exactly the form fields item and score": "表单应当只包含 item 和 score 两个字段",
    "expected exactly one item and one score": "item 和 score 应当各有且仅有一个",
    "this item is not in your set": "这张图像不在你的评分集中",
    "the score must be one of 1, 2, 3, 4, 5": "分数只能是 1、2、3、4、5 之一",
    "expected exactly the form fields pair and choice": "表单应当只包含 pair 和 choice 两个字段",
    "expected exactly one pair and one choice": "pair 和 choice 应当各有且仅有一个",
    "the choice must be left or right": "choice 只能是 left 或 right",
    "this pair is not the one you were shown (answered already?)": "这不是当前向你展示的那组图像（是否已经作答过？）",
    # each student's own result (feedback)
    "Human evaluation (blind MOS study, {split})": "人工评价（盲评 MOS 测评，{split}）",
    "bundled sample photos, test split": "内置示例照片的测试集",
    "Your images have no kept rating yet: no points from the human evaluation so far.":
        "你的图像目前还没有有效评分，因此人工评价暂时没有得分。",
    "Your images' mean opinion score: {mos} on the 1 (bad) … 5 (excellent) scale, 95 % interval {low}–{high} "
    "(bootstrap over raters and images; rater bias and inconsistency corrected).":
        "你的图像的平均意见得分（MOS）为 {mos}（评分范围为 1 分“很差”至 5 分“优秀”），95% 置信区间为 "
        "{low}–{high}。该区间由对评分者和图像的自助法（bootstrap）重采样得到，并已校正评分者的偏差和不一致性。",
    "Hidden controls in the same study: nearest-neighbour upscale {nn}, bicubic {bicubic}, the original HR image "
    "{hr}.":
        "同一测评中的隐藏对照：最近邻放大 {nn}，双三次插值 {bicubic}，原始高分辨率图像（HR）{hr}。",
    "Points: {points} / {max} = {max} × (your MOS − nearest-neighbour) / (HR − nearest-neighbour), clipped to "
    "0…{max}.":
        "得分：{points} / {max} = {max} × (你的 MOS − 最近邻) / (HR − 最近邻)，结果限制在 0…{max} 之间。",
}
