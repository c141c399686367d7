"""A byte-level GPT trained and fine-tuned on Dutch text, built to survive preemption.

Run it as `python -m aifactory.recipes.dutch_gpt pretrain|finetune --config tiny|small|medium`.

What a job gets from the facility and gives back (the contract; `docs` and the README say more):
- reads `AIFACTORY_DATASET_DUTCH_BOOKS` (pretraining text) and `AIFACTORY_DATASET_DUTCH_EVAL`
  (`*-test.txt` held out for evaluation, `*-dev.txt` the fine-tuning text);
- keeps its checkpoints in `AIFACTORY_CHECKPOINT_DIR`, the same folder for every attempt, and
  resumes from the newest one there with the same data order and optimizer state;
- appends progress as JSON lines to `AIFACTORY_PROGRESS_FILE`;
- on SIGTERM (sent `AIFACTORY_GRACE_S` seconds before a preemption or a time limit kills it)
  finishes the step under way, writes a checkpoint and exits with `EXIT_PREEMPTED` (143).

Words: a *step* is one optimizer update; *tokens* are bytes (the vocabulary is the 256 byte
values); *perplexity* is per byte, exp of the mean cross-entropy on the held-out text.
"""

EXIT_PREEMPTED = 143  # 128 + SIGTERM, what a shell reports for a job ended by the signal
