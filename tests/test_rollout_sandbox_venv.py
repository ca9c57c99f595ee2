"""The sandbox works wherever Python is installed, including a virtualenv under /tmp (which the sandbox's
private /tmp used to hide: `bwrap: execvp .../bin/python: No such file or directory`)."""
import subprocess
import sys
import textwrap

from test_rollout_support import sandbox_or_skip

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from w4s_jax.rollout import Executor, evaluate_workflow
    from w4s_jax.tasks import Item

    class T:
        name, description = "t", "t"
        def score(self, p, item): return float(p == {"answer": item.answer})

    CODE = "import json\\ndef solver(agent, task):\\n    return {'answer': str(len(task))}\\n"

    async def main():
        async with Executor("http://127.0.0.1:9/v1", model="sim") as ex:
            r = await evaluate_workflow(CODE, T(), [Item("a", "abc", "3"), Item("b", "hello", "5")], ex)
        print(sys.prefix, r.accuracy, r.note, [x.error for x in r.records])
    asyncio.run(main())
""")


def test_sandbox_runs_with_an_interpreter_in_a_venv_under_tmp(tmp_path_factory):
    sandbox_or_skip()
    venv = tmp_path_factory.mktemp("venv-under-tmp")
    assert str(venv).startswith("/tmp/")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    p = subprocess.run([str(venv / "bin" / "python"), "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    prefix, acc, *_ = p.stdout.split()
    assert prefix == str(venv) and acc == "1.0", p.stdout
