"""The MLP fleet's speed, on this machine's CPU and on a GPU where one exists, and beside the CPU fleet.

Prints, from real `mlflow run` invocations in fresh temporary folders:

1. the default GPU fleet (`mlp:10`) with `device=auto`: wall time, seconds per model (tuning +
   refit), training samples per second (median of the models' refits), where it trained;
2. where `torch.cuda.is_available()`: the same on the GPU with one GPU per model and with four
   models per GPU (`gpus_per_model=0.25`), sampling the GPU's utilisation with nvidia-smi;
3. a CPU fleet and the GPU fleet alone and then started at the same time: their wall times,
   and together / (sum alone), which is about 1 when they share the same CPUs (no GPU) and
   should be near max(alone) / sum(alone) when the MLPs have a GPU of their own.

    python benchmarks/train_gpu_speed.py
    python benchmarks/train_gpu_speed.py --cpu-models logistic:4,svm:4,random_forest:4 --gpu-models mlp:6
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import threading

import _harness


def gpu_fleet(params: list[str], label: str, sample_gpu: bool = False) -> None:
    work = _harness.workspace()
    utilisation: list[float] = []
    stop = threading.Event()
    if sample_gpu:
        threading.Thread(target=_sample_gpu, args=(utilisation, stop), daemon=True).start()
    done = _harness.run(work, "train_gpu", params)
    stop.set()
    _, children, rows = _harness.sweeps(work)
    rows["model_s"] = rows["tuning_s"] + rows["train_s"]
    rate = [r.data.metrics["samples_per_s"] for r in children if "samples_per_s" in r.data.metrics]
    print(
        f"{label:<34} wall {done.wall_s:7.1f} s | {len(rows)} models on {', '.join(sorted(set(rows['device'])))} | "
        f"{rows['model_s'].mean():6.1f} s per model | {statistics.median(rate):10,.0f} training samples/s"
        + (
            f" | GPU utilisation mean {statistics.mean(utilisation):.0f}%, max {max(utilisation):.0f}%"
            if utilisation
            else ""
        )
    )
    shutil.rmtree(work, ignore_errors=True)


def _sample_gpu(out: list[float], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            text = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            out.append(float(text.split()[0]))
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu-models", default="mlp:10")
    parser.add_argument(
        "--cpu-models", default="logistic:5,svm:5,random_forest:5,xgboost:5,gradient_boosting:5,naive_bayes:5"
    )
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available()
    print(f"GPU: {torch.cuda.get_device_name(0) if cuda else 'none (the MLPs train on CPU)'}\n")
    gpu_fleet([f"models={args.gpu_models}", "device=auto"], "GPU fleet, device=auto")
    if cuda:
        gpu_fleet([f"models={args.gpu_models}", "device=cuda"], "GPU fleet, 1 GPU per model", sample_gpu=True)
        gpu_fleet(
            [f"models={args.gpu_models}", "device=cuda", "gpus_per_model=0.25"],
            "GPU fleet, 4 models per GPU",
            sample_gpu=True,
        )

    work = _harness.workspace()
    cpu_alone = _harness.run(work, "train_cpu", [f"models={args.cpu_models}"]).wall_s
    gpu_alone = _harness.run(work, "train_gpu", [f"models={args.gpu_models}"]).wall_s
    shutil.rmtree(work, ignore_errors=True)
    work = _harness.workspace()
    total, (cpu_together, gpu_together) = _harness.run_together(
        work, [("train_cpu", [f"models={args.cpu_models}"]), ("train_gpu", [f"models={args.gpu_models}"])], "together"
    )
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nCPU fleet ({args.cpu_models}) alone {cpu_alone:.1f} s, together {cpu_together:.1f} s")
    print(f"GPU fleet ({args.gpu_models}) alone {gpu_alone:.1f} s, together {gpu_together:.1f} s")
    print(
        f"both at once {total:.1f} s = {total / (cpu_alone + gpu_alone):.2f} x the sum alone "
        f"({total / max(cpu_alone, gpu_alone):.2f} x the longer alone)"
    )


if __name__ == "__main__":
    main()
