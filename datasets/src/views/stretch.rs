//! Time stretching without a pitch change by WSOLA, waveform-similarity overlap-add
//! (W. Verhelst and M. Roelands, ICASSP 1993; the variant in J. Driedger and M. Müller, "A Review
//! of Time-Scale Modification of Music Signals", Applied Sciences 2016, section 3).

use super::resample::dot;

/// Analysis and synthesis frame: 32 ms at 16 kHz, long enough for two periods of a low voice.
const FRAME: usize = 512;
/// Synthesis hop: half a frame, where periodic Hann windows sum to exactly one.
const HOP: usize = FRAME / 2;
/// How far (in samples) each analysis frame may move to line up with its predecessor's natural
/// continuation: 10 ms, one period of a 100 Hz voice.
const TOLERANCE: usize = 160;

/// Stretches `y` to `out_len` samples, keeping its pitch. Inputs shorter than one frame have no
/// periods to splice and are zero-padded or cut to `out_len` instead.
pub(crate) fn stretch(y: &[f32], out_len: usize) -> Vec<f32> {
    if y.len() < FRAME || out_len == 0 {
        let mut out = y[..y.len().min(out_len)].to_vec();
        out.resize(out_len, 0.0);
        return out;
    }
    let alpha = out_len as f64 / y.len() as f64;
    let analysis_hop = HOP as f64 / alpha;
    let frames = (out_len + FRAME / 2) / HOP + 2;

    // Zero padding so that every candidate frame lies inside `padded`.
    let front = FRAME / 2 + TOLERANCE + HOP;
    let last_nominal = front + ((frames - 1) as f64 * analysis_hop).round() as usize - FRAME / 2;
    let needed = last_nominal + TOLERANCE + HOP + FRAME + 1;
    let mut padded = vec![0.0f32; front];
    padded.extend_from_slice(y);
    padded.resize(needed.max(padded.len()), 0.0);

    let window: Vec<f32> = (0..FRAME)
        .map(|n| {
            let a = 2.0 * std::f64::consts::PI * n as f64 / FRAME as f64;
            (0.5 - 0.5 * a.cos()) as f32
        })
        .collect();
    // Output frame k covers [k * HOP - FRAME / 2, ...): `buf` is offset by FRAME / 2.
    let mut buf = vec![0.0f32; frames * HOP + FRAME];
    let mut previous: Option<usize> = None;
    for k in 0..frames {
        let nominal = front + (k as f64 * analysis_hop).round() as usize - FRAME / 2;
        let start = match previous {
            None => nominal,
            Some(p) => best_match(&padded, p + HOP, nominal),
        };
        let frame = &padded[start..start + FRAME];
        for ((o, &w), &v) in buf[k * HOP..].iter_mut().zip(&window).zip(frame) {
            *o += w * v;
        }
        previous = Some(start);
    }
    buf[FRAME / 2..FRAME / 2 + out_len].to_vec()
}

/// The start within `nominal ± TOLERANCE` whose frame correlates best with the frame at
/// `natural` (the continuation of the previous frame); `nominal` on ties, silence included.
fn best_match(padded: &[f32], natural: usize, nominal: usize) -> usize {
    let target = &padded[natural..natural + FRAME];
    let score = |start: usize| dot(&padded[start..start + FRAME], target);
    let mut best = nominal;
    let mut best_score = score(nominal);
    for start in nominal - TOLERANCE..=nominal + TOLERANCE {
        let s = score(start);
        if s > best_score {
            best = start;
            best_score = s;
        }
    }
    best
}
