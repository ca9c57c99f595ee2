"""DROP: reading comprehension with discrete reasoning over a paragraph, scored by token F1.

Data: the file ADAS and the public W4S code use, `drop_v0_dev.jsonl.gz` (the DROP dev set as simple-evals
ships it: `context` = "Passage: ...\\nQuestion: ...\\nAnswer:", `ref_text` = accepted answers joined by "|").
Split as ADAS: its first and last rows (ADAS's few-shot examples) are left out, the other 9534 are
shuffled with seed 0; valid [:128], test the next 800, train the rest. The hub copy of DROP (ucinlp/drop)
has a different format and order, so ADAS's split cannot be rebuilt from it; only the file is read.
"""
from __future__ import annotations

from .answers import score_drop
from .base import Item, SplitTask
from .loading import Row, bad_row, build_items, local_file, not_found, read_jsonl, require, seeded_split
from .workflows import seed_workflows

SEED = 0
FILE = "drop_v0_dev.jsonl.gz"
ROLE = "reading comprehension expert"
ANSWER_FORMAT = ("Put only the short answer in `answer`: a number (digits only, no units), a date, or words "
                 "copied from the passage; if the answer has several parts, join them with ' and '.")
DESCRIPTION = f"""DROP (Discrete Reasoning Over Paragraphs)
**Type**: reading comprehension that needs counting, sorting, adding or subtracting facts found in a
passage (often sports summaries or history and census paragraphs).
**Input**: the passage and a question about it.
**Answer format**: {ANSWER_FORMAT} Scored by token F1 against the accepted answers (articles,
punctuation and case are ignored; a number must be the right number).
Example question: Passage: The Hawks scored on a 12-yard run in the first quarter and a 40-yard field goal
in the second, then added a 7-yard pass in the fourth. Question: How many yards was the longest score?
Example solution: The scores were 12, 40 and 7 yards; the longest is 40. Answer: 40
"""


def score_drop_item(prediction, item: Item) -> float:
    return score_drop(prediction, item.answer)


def question_text(context: str) -> str:
    """The passage and question as the workflow sees them: the trailing 'Answer:' prompt is dropped."""
    text = context.strip()
    if text.endswith("Answer:"):
        text = text[: -len("Answer:")].rstrip()
    return text


def drop(data_dir: str | None) -> SplitTask:
    path = local_file(data_dir, FILE)
    if path is None:
        raise not_found("drop", data_dir, [FILE])
    rows = read_jsonl(path)

    def make(i: int, row: Row) -> Item | None:
        if i == 0 or i == len(rows) - 1:   # ADAS keeps these two for few-shot examples
            return None
        line = row.where.rsplit(":", 1)[-1]
        item_id = f"drop/{line}"
        context, ref_text = require(row, item_id, "context", "ref_text")
        refs = [r for r in str(ref_text).split("|") if r.strip()]
        if not refs:
            raise bad_row(row, item_id, f"unparsable target: no accepted answer in ref_text {ref_text!r}")
        return Item(item_id, question_text(str(context)), refs)

    splits = seeded_split(build_items(rows, make), seed=SEED, valid=128, test=800, origin=str(path))
    return SplitTask(name="drop", description=DESCRIPTION, splits=splits, scorer=score_drop_item,
                     workflows=seed_workflows(ANSWER_FORMAT, role=ROLE, code=False),
                     source={"origin": str(path), "seed": SEED, "valid": 128, "test": 800,
                             "left_out": "first and last rows (ADAS few-shot examples)"})
