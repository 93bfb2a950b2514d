"""engine.runtime.pipeline: stages in threads, bounded queues, the newest item winning."""

import threading
import time

from engine.runtime.pipeline import Stage, StagePipeline


def _run(stages, items, sizes):
    drops = []

    def produce(feed):
        for item in items:
            if not feed.put(item):
                return

    pipeline = StagePipeline(stages, report=lambda i, e: None,
                             on_drop=lambda: drops.append(1), queue_sizes=sizes)  # fmt: skip
    return list(pipeline.run(produce)), len(drops)


def test_without_replace_nothing_is_dropped_and_order_holds():
    slow = Stage("slow", lambda x: time.sleep(0.002) or [x * 10], lambda x: x)
    out, dropped = _run([Stage("a", lambda x: [x + 1], lambda x: x), slow], range(30), (1, 1, 1))
    assert out == [(i + 1) * 10 for i in range(30)] and dropped == 0


def test_replace_hands_the_slow_stage_the_newest_item_merged():
    merged = []

    def replace(waiting, newer):  # keep the newest, remember what it replaced
        merged.append((waiting, newer))
        return (newer[0], waiting[1] + newer[1])

    seen_by_slow = []

    def slow_work(item):
        seen_by_slow.append(item)
        time.sleep(0.01)  # much slower than the first stage
        return [item]

    fast = Stage("fast", lambda x: [(x, [x])], lambda item: item, replace=replace)
    slow = Stage("slow", slow_work, lambda item: item[0])
    out, dropped = _run([fast, slow], range(60), (1, 1, 1))
    firsts = [item[0] for item in out]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)  # in order, no repeats
    assert firsts[-1] == 59  # the newest item always gets through
    assert dropped == len(merged) > 0 and len(out) + dropped == 60
    # every input is accounted for exactly once: in an output item or merged into one
    assert sorted(i for item in out for i in item[1]) == list(range(60))
    assert threading.active_count() < 50  # the threads ended
