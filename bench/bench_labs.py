"""How long does a lab take, from its button to its conclusion? Measured in Chromium against a fresh server.

    python -m bench.bench_labs [--dataset sprites] [--labs zscore-tanh,grey-sigmoid,not-unit,sampled-z]
    python -m bench.bench_labs --images ../shared/data/cifar10-5k-png.zip   # uploaded first, as a person would
    python -m bench.bench_labs --rates [--steps 60]   # each lab's training steps/s, for base.STEP_BUDGETS
    python -m bench.bench_labs --seeds 5   # each lab's verdicts at --seed 0..4 (3 seeds each), no browser

For each lab, with its defaults (its step budget, about 45 s of training here): pick it on the Labs page,
press Run, wait until the conclusion is drawn, and report the wall time, the findings and the
screenshot (artifacts/screenshots/lab-<id>-<dataset>.png). The sampled-z lab is also measured from the
bundled model (no training) where it has one. Goal: about a minute of training; the rest is loading
the data, evaluating each variant and measuring the family.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from browser_harness import REPO, VIEWPORT, chromium, go_to, running_server, wait_settled
from vae_core.labs import LABS
from vae_core.labs.base import LabSettings

SCREENSHOTS = REPO / "artifacts" / "screenshots"
TIMEOUT_MS = 600_000
SHARED_DATA = REPO.parent / "shared" / "data"  # the host's data folder for MNIST here


def choose(page, key: str, option: str) -> None:
    page.locator(f".st-key-{key}").click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_settled(page)


def conclusion_after(page, press) -> tuple[float, str]:
    """Seconds from press() until the conclusion box is drawn and the script is done, and its text."""
    before = page.locator(".st-key-lab_conclusion").count() and page.inner_text(".st-key-lab_conclusion")
    t0 = time.perf_counter()
    press()
    page.wait_for_function("""(before) => {
        const box = document.querySelector(".st-key-lab_conclusion");
        const app = document.querySelector("[data-testid='stApp']");
        return box && box.innerText !== before && !document.querySelector(".st-key-lab_live")
            && app.getAttribute("data-test-script-state") === "notRunning"; }""", arg=before or "",
                           timeout=TIMEOUT_MS, polling=250)
    return time.perf_counter() - t0, page.inner_text(".st-key-lab_conclusion")


def shoot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(int(height), 8000)})
    page.wait_for_timeout(800)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
    return path


def run_lab(page, lab_id: str, dataset: str, instant: bool) -> None:
    lab = LABS[lab_id]
    choose(page, "lab", lab.title)
    if dataset != "sprites":
        choose(page, f"lab_dataset_{lab_id}", dataset)
    button = "Measure the bundled model now" if instant else None
    press = (lambda: page.locator(".st-key-lab_instant").get_by_role("button", name=button).click()) if instant \
        else (lambda: page.locator(".st-key-lab_run button").click())
    seconds, text = conclusion_after(page, press)
    name = f"lab-{lab_id}-{dataset}" + ("-bundled" if instant else "")
    print(f"\n## {lab_id} on {dataset}{' (bundled model)' if instant else ''}: {seconds:.1f} s from the button "
          f"to the conclusion; screenshot {shoot(page, name)}\n{text}", flush=True)


def upload(page, url: str, archive: Path) -> None:
    """On the Your images page, as a person: upload the archive and wait for its summary."""
    page.goto(f"{url}/images", wait_until="domcontentloaded")
    wait_settled(page, timeout=60_000)
    page.locator(".st-key-images_upload input[type='file']").set_input_files(str(archive))
    page.get_by_text("images loaded").first.wait_for(timeout=120_000)
    wait_settled(page, timeout=60_000)


def step_rate(lab_id: str, steps: int) -> float:
    """The lab's family trained in the foreground for `steps` steps: training steps per second, first step to last
    (the data loading before and the measuring after left out)."""
    from vae_core.labs.run import run_lab

    times: list[tuple[float, int]] = []

    def on_update(update) -> None:
        if update.steps:
            times.append((time.perf_counter(), max(s.step for s in update.steps)))

    with tempfile.TemporaryDirectory() as tmp:
        run_lab(LABS[lab_id], LABS[lab_id].settings(steps=steps), Path(tmp), on_update=on_update)
    (t1, s1), (t2, s2) = times[0], times[-1]
    return (s2 - s1) / (t2 - t1)


def rates(labs: list[str], steps: int) -> None:
    for lab_id in labs:
        rate, budget = step_rate(lab_id, steps), LABS[lab_id].budget
        print(f"{lab_id}: {rate:.2f} steps/s; its {budget.steps} steps would take {budget.steps / rate:.0f} s "
              f"(STEP_BUDGETS says {budget.steps_per_s:g} steps/s)", flush=True)


def seed_table(labs: list[str], windows: int, dataset: str, runs_dir: Path) -> None:
    """Each lab at its default budget, run as `lab ID --seed w` for w < windows (each on LAB_SEEDS seeds): the
    verdict of every finding per run, and whether the runs agree. Each seed's family is trained once (a variant
    trained in a family on several seeds equals it trained alone), kept under runs_dir (a second call reuses it),
    and each run is concluded from its seeds'."""
    from vae_core.labs.base import LAB_SEEDS
    from vae_core.labs.run import conclude_family

    for lab_id in labs:
        lab, t0, dataset = LABS[lab_id], time.perf_counter(), data_for(lab_id, dataset)
        one = {s: trained_seed(lab_id, dataset, s, runs_dir) for s in range(windows + LAB_SEEDS - 1)}
        trained, rows = time.perf_counter() - t0, []
        for w in range(windows):
            settings = lab.settings(dataset=dataset, seed=w)
            rows.append([f.verdict for f in conclude_family(lab, settings, tuple(
                d for s in settings.seed_list for d in one[s])).findings])
            singles = conclude_family(lab, lab.settings(dataset=dataset, seed=w, seeds=1), one[w]).findings
            print(f"{lab_id} seed {w} alone: {[f.verdict for f in singles]}", flush=True)
        print(f"\n### {lab_id} ({lab.budget.steps} steps, {LAB_SEEDS} seeds a run; {len(one)} seeds trained or "
              f"read in {trained:.0f} s)\n", flush=True)
        print("| finding | " + " | ".join(f"--seed {w}" for w in range(windows)) + " | the same on all? |")
        print("|---|" + "---|" * (windows + 1))
        for i in range(max(map(len, rows))):
            cells = [r[i] if i < len(r) else "—" for r in rows]
            print(f"| {i + 1} | " + " | ".join(cells) + f" | {'yes' if len(set(cells)) == 1 else '**no**'} |",
                  flush=True)


def data_for(lab_id: str, dataset: str) -> str:
    """The dataset asked for, where the lab runs on its kind of data; else the bundled data of the lab's kind."""
    from vae_core.config import dataset_kind

    kind = LABS[lab_id].kind
    return dataset if dataset_kind(dataset) == kind else {"images": "sprites", "vectors": "vectors"}[kind]


def trained_seed(lab_id: str, dataset: str, seed: int, runs_dir: Path) -> tuple[Path | None, ...]:
    """The lab's family on one seed at its default budget: trained now, or read back from runs_dir."""
    import json

    from vae_core.labs.run import run_lab

    record = runs_dir / lab_id / f"seed-{seed}.json"
    if record.is_file():
        return tuple(Path(d) if d else None for d in json.loads(record.read_text()))
    lab = LABS[lab_id]
    dirs = run_lab(lab, lab.settings(dataset=dataset, seed=seed, seeds=1), runs_dir / lab_id).run_dirs
    record.write_text(json.dumps([str(d) if d else None for d in dirs]))
    return dirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="sprites")
    parser.add_argument("--labs", default=",".join(LABS), help="--seeds runs a lab on rows of numbers on the "
                        "bundled vectors whatever --dataset says; the browser run takes the labs of --dataset's kind")
    parser.add_argument("--images", type=Path, help="a .zip to upload on the Your images page; the labs run on it")
    parser.add_argument("--rates", action="store_true", help="measure each lab's training steps/s, no browser")
    parser.add_argument("--steps", type=int, default=60, help="steps trained per lab for --rates")
    parser.add_argument("--seeds", type=int, help="print each lab's verdicts at --seed 0 .. N-1, no browser")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "artifacts" / "lab-seeds",
                        help="where --seeds keeps each seed's trained family (reused by a second call)")
    args = parser.parse_args()
    if args.rates:
        return rates(args.labs.split(","), args.steps)
    if args.seeds:
        return seed_table(args.labs.split(","), args.seeds, args.dataset, args.runs_dir)
    if args.images:
        args.dataset = "images"
    args.labs = ",".join(i for i in args.labs.split(",") if data_for(i, args.dataset) == args.dataset)
    data_dir = None if args.dataset in ("sprites", "images") else str(SHARED_DATA)
    env = {"VAE_LAB_DATA": data_dir} if data_dir else {}
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser, \
            running_server(Path(tmp) / "runs", Path(tmp), env) as server:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        if args.images:
            upload(page, server.url, args.images)
            go_to(page, "Labs")  # by the sidebar: the browser keeps its token, and so its upload
        else:
            page.goto(f"{server.url}/labs", wait_until="domcontentloaded")
        wait_settled(page, timeout=60_000)
        for lab_id in args.labs.split(","):
            instant = LABS[lab_id].instant
            if instant and not args.images and instant(LabSettings(args.dataset, data_dir)):
                run_lab(page, lab_id, args.dataset, instant=True)
            run_lab(page, lab_id, args.dataset, instant=False)


if __name__ == "__main__":
    main()
