"""Draws target/bench/results.json as a chart: bytes moved per session
(down + up) against database size, one line per layout and session."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

results = json.load(open(sys.argv[1]))
sessions = ["cold open", "warm read", "one-row write", "open after a change"]
layouts = ["baseline", "single", "versioned"]
styles = {"baseline": "o-", "single": "s--", "versioned": "^-"}

fig, axes = plt.subplots(1, len(sessions), figsize=(16, 4.5), sharey=True)
for ax, session in zip(axes, sessions):
    for layout in layouts:
        points = sorted(
            (r["size_mib"], r["bytes_down"] + r["bytes_up"])
            for r in results
            if r["layout"] == layout and r["session"] == session
        )
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, [max(y, 1) for y in ys], styles[layout], label=layout)
    ax.set_title(session)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("database size (MiB)")
    ax.grid(True, which="both", alpha=0.3)
axes[0].set_ylabel("bytes moved per session (down + up; 0 shown as 1)")
axes[0].legend()
fig.suptitle("sqlite-s3: bytes per session against database size (moto on loopback)")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
