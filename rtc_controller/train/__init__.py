"""Training a small π0.5 on demonstrations (ROS-free): ``rtc-train``.

Pipeline: a LeRobot-style episode dataset (``dataset``; ``synthetic`` makes one) -> openpi norm stats
(``norm_stats``) -> a SentencePiece tokenizer on the policy's own prompts (``tokenizer``) -> model-ready samples
built by ``Pi05Policy``'s transforms (``samples``) -> openpi's flow-matching objective on the inference path's
functions (``objective``) with AdamW/cosine/EMA (``optim``) in a deterministic, resumable loop (``loop``,
``checkpoints``) -> an openpi-layout checkpoint with the tokenizer and the policy section (``export``).
"""
