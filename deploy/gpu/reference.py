"""transformers' generate on the checkpoints run.sh made, as the reference implementation and peer:
greedy, prompts of random token ids, at batch 1 and at a batch as large as our concurrency, timed on
the same device. Output: one JSON object, tokens/s per model and batch."""
import argparse, json, time

import torch
from transformers import AutoModelForCausalLM

parser = argparse.ArgumentParser()
parser.add_argument("--device", default="cuda")
parser.add_argument("--models", nargs="+", required=True)
parser.add_argument("--input-len", type=int, default=128)
parser.add_argument("--output-len", type=int, default=128)
parser.add_argument("--batch", type=int, default=256)
parser.add_argument("--result-json", required=True)
args = parser.parse_args()

device = torch.device(args.device)
dtype = torch.bfloat16 if device.type == "cuda" else torch.float32


def generate(model, batch, seed):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(100, model.config.vocab_size - 100, (batch, args.input_len), generator=generator).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=args.output_len,
                             min_new_tokens=args.output_len, pad_token_id=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    generated = out.shape[1] - args.input_len
    return {"batch": batch, "seconds": round(seconds, 3), "output_tokens": batch * generated,
            "output_tok_s": round(batch * generated / seconds, 1)}


results = {"engine": "transformers", "device": str(device), "dtype": str(dtype).replace("torch.", ""),
           "torch": torch.__version__, "models": {}}
for path in args.models:
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype).to(device).eval()
    generate(model, 1, seed=0)                      # warm-up: kernels chosen, memory allocated
    results["models"][path.rstrip("/").split("/")[-1]] = {
        "batch_1": generate(model, 1, seed=1),
        f"batch_{args.batch}": generate(model, args.batch, seed=2),
    }
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
json.dump(results, open(args.result_json, "w"), indent=2)
print(json.dumps(results))
