"""One process of a multi-process test run: `launch/train.py` with its arguments, plus what the tests need to
see and do from inside the data path (never by reading the trainer's code):

    W4S_TEST_RECORD=DIR   every batch this process builds is appended to DIR/batches-<process>.jsonl:
                          {"position", "rows": [start, stop] of the global batch, "row_hashes"} (hash of
                          each row's input ids)
    W4S_TEST_KILL=P:K     process P kills itself (SIGKILL) when it starts building the batch at position K

    python tests/multihost_worker.py --config=configs/train.py:tiny --config.distributed=True ...
"""
import hashlib
import json
import os
import signal
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def row_hashes(input_ids) -> list[str]:
    return [hashlib.sha1(row.tobytes()).hexdigest()[:12] for row in input_ids]


def install_hooks() -> None:
    import jax

    from w4s_jax.train.batches import BatchPlan

    record_dir = os.environ.get("W4S_TEST_RECORD", "")
    kill = os.environ.get("W4S_TEST_KILL", "")
    built = BatchPlan.arrays

    def arrays(self, position, rows=None):
        me = jax.process_index()
        if kill and kill == f"{me}:{position}":
            os.kill(os.getpid(), signal.SIGKILL)
        out = built(self, position, rows)
        if record_dir:
            span = rows.indices(self.rows)[:2] if rows is not None else (0, self.rows)
            with open(os.path.join(record_dir, f"batches-{me}.jsonl"), "a") as f:
                f.write(json.dumps({"position": position, "rows": list(span),
                                    "row_hashes": row_hashes(out["input_ids"])}) + "\n")
        return out

    BatchPlan.arrays = arrays


if __name__ == "__main__":
    # the launch script's own argv[0], so its config file resolves as it does for launch/train.py
    sys.argv = [os.path.join(REPO, "launch", "train.py"), *sys.argv[1:]]
    install_hooks()
    from w4s_jax.cli.train import run

    run()
