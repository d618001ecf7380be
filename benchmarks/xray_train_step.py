"""Seconds per training step of the paper-004 classifier, per backbone and input size.

Picks the backbone and input size of the x-ray quick preset (6 configurations must train in
<= 5 min on a 2-core CPU). Each configuration is measured in a fresh subprocess::

    KERAS_BACKEND=tensorflow python benchmarks/xray_train_step.py \\
        --configs inception_v3:75 inception_v3:96 small_cnn:64 small_cnn:128

Model: `build_inception_classifier` (``weights=None``; ImageNet weights do not change the
cost), compiled with the paper's SGD and categorical cross-entropy. Reported: the first
``train_on_batch`` (graph building / compilation), the median of ``--repeats`` later steps on
batches of ``--batch-size`` (paper: 16), ``predict_on_batch`` per image, the parameter count,
and the 1-minute load average before and after (other jobs share the machine).

Prints one JSON document.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _measure(backbone, size, batch_size, repeats, num_classes):
    import keras
    import numpy as np

    from kerasmed.models.xray import build_inception_classifier, compile_xray_classifier

    kwargs = {"filters": (16, 32, 64, 128), "feature_dim": 128} if backbone == "small_cnn" else {}
    model = build_inception_classifier(
        num_classes, (size, size, 3), weights=None, backbone=backbone, **kwargs
    )
    compile_xray_classifier(model)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, size, size, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, num_classes, batch_size), num_classes)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    steps = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        steps.append(time.perf_counter() - start)
    model.predict_on_batch(x)
    start = time.perf_counter()
    model.predict_on_batch(x)
    predict = (time.perf_counter() - start) / batch_size
    return {
        "backbone": backbone,
        "size": size,
        "parameters": int(model.count_params()),
        "first_step_s": round(first, 3),
        "step_s_median": round(statistics.median(steps), 4),
        "step_s_min": round(min(steps), 4),
        "predict_s_per_image": round(predict, 5),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["inception_v3:75", "small_cnn:64"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--num-classes", type=int, default=6)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backbone, size = args.child.split(":")
        result = _measure(backbone, int(size), args.batch_size, args.repeats, args.num_classes)
        print(json.dumps(result))
        return
    import keras

    results = []
    for config in args.configs:
        load_before = os.getloadavg()[0]
        command = [sys.executable, __file__, "--child", config, "--batch-size",
                   str(args.batch_size), "--repeats", str(args.repeats), "--num-classes",
                   str(args.num_classes)]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        result["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        results.append(result)
    print(json.dumps({
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "cpus": os.cpu_count(),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "results": results,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
