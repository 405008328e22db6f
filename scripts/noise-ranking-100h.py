"""Who outranks the source under noise on the 100-hour archive (docs/RESULTS.md, issue 6).

N excerpts of 3 s of the synthetic utterances of at least 3.5 s, with issue 6's view (noise at
20 dB SNR, speed 1.05, -6 dB), are searched in DB with the `pairalign` binary BIN; for each query
whose source is not first, prints the source's voice and text, the top hit's, its normalized
distance and the source's rank in the top 5; at the end counts first / top hit of the same text
/ of the same voice / other.

    python3 scripts/noise-ranking-100h.py N DB SYNTH_DIR BIN
    (e.g. 40 latency-data/db latency-data/synth target/release/pairalign)
"""
import json, random, subprocess, os, sys
root = sys.argv[3]
B = sys.argv[4]
man=[json.loads(l) for l in open(root+'/manifest.jsonl')]
by={os.path.realpath(os.path.join(root,m['path'])):m for m in man}
random.seed(3)
long=[m for m in man if m['duration']>=3.5]
stats={'first':0,'same_text':0,'same_voice':0,'other':0,'none':0}
n=int(sys.argv[1]); db=sys.argv[2]
for i in range(n):
    m=random.choice(long)
    src=os.path.join(root,m['path'])
    start=random.uniform(0,m['duration']-3.0)
    q=f'/tmp/nq{i}.wav'
    subprocess.run([B,'excerpt',src,'--start',f'{start:.2f}','--duration','3','--view','noise=20,speed=1.05,gain=-6:-6','--seed',str(i),'--out',q],check=True,capture_output=True)
    out=subprocess.run([B,'search','--db',db,q,'--json','--top','5'],capture_output=True,text=True)
    hits=json.loads(out.stdout.strip().splitlines()[-1])['hits']
    if not hits: stats['none']+=1; continue
    top=by.get(os.path.realpath(hits[0]['id']))
    rank=next((r for r,h in enumerate(hits) if os.path.realpath(h['id'])==os.path.realpath(src)),None)
    if top is m: stats['first']+=1
    elif top and top['text']==m['text']: stats['same_text']+=1
    elif top and top['voice']==m['voice']: stats['same_voice']+=1
    else: stats['other']+=1
    if top is not m:
        print(f"{m['voice']:>22} '{m['text'][:40]}' -> {top['voice'] if top else '?':>22} '{top['text'][:40] if top else ''}' nd {hits[0]['norm_distance']:.2f} src rank {rank}", flush=True)
print(stats)
