//! The EMA teacher (issue 8, training component 2): an exponential moving average of the
//! student's weights, `teacher <- decay * teacher + (1 - decay) * student` after every
//! optimizer step (mean teacher, Tarvainen and Valpola 2017). Decoding one view with it gives
//! the target string of the other view; being an average, it changes slowly, so the targets do
//! not chase the student's every step.

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use pairalign_models::{PairAlignConfig, PairAlignModel};

use crate::{Error, Result};

/// The teacher's weights, by the student's names.
#[derive(Clone, Debug)]
pub struct EmaTeacher {
    weights: BTreeMap<String, Tensor>,
}

impl EmaTeacher {
    /// A teacher equal to the student in `varmap` now.
    pub fn from_varmap(varmap: &VarMap) -> Result<Self> {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?;
        let weights = data
            .iter()
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().detach().copy()?)))
            .collect::<Result<_>>()?;
        Ok(EmaTeacher { weights })
    }

    /// A teacher with these weights (e.g. from a checkpoint).
    pub fn from_weights(weights: BTreeMap<String, Tensor>) -> Self {
        EmaTeacher { weights }
    }

    /// The weights by name.
    pub fn weights(&self) -> &BTreeMap<String, Tensor> {
        &self.weights
    }

    /// `teacher <- decay * teacher + (1 - decay) * student` for every weight; the student must
    /// have exactly the teacher's weights.
    pub fn update(&mut self, student: &VarMap, decay: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&decay) {
            return Err(Error::BadConfig(format!(
                "an EMA decay must be in [0, 1], got {decay}"
            )));
        }
        let data = student
            .data()
            .lock()
            .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?;
        if data.len() != self.weights.len() {
            return Err(Error::BadConfig(format!(
                "the student has {} weights, the teacher {}",
                data.len(),
                self.weights.len()
            )));
        }
        for (name, t) in self.weights.iter_mut() {
            let s = data
                .get(name)
                .ok_or_else(|| Error::BadConfig(format!("the student has no weight {name}")))?;
            let s = s.as_tensor().detach();
            *t = (t.affine(decay, 0.0)? + s.affine(1.0 - decay, 0.0)?)?;
        }
        Ok(())
    }

    /// The teacher as a model with `cfg` on `device` (the weights are shared, not copied).
    pub fn model(&self, cfg: &PairAlignConfig, device: &Device) -> Result<PairAlignModel> {
        let map: HashMap<String, Tensor> = self
            .weights
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.to_device(device)?)))
            .collect::<Result<_>>()?;
        Ok(PairAlignModel::load(
            cfg,
            VarBuilder::from_tensors(map, DType::F32, device),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pairalign_models::init::seeded_varmap;

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn tiny() -> PairAlignConfig {
        crate::pairalign::tiny_config(PairAlignConfig::default())
    }

    #[test]
    fn update_is_exact() {
        let dev = Device::Cpu;
        let cfg = tiny();
        let teacher_vm = VarMap::new();
        PairAlignModel::load(&cfg, seeded_varmap(&teacher_vm, 1, &dev)).unwrap();
        let student_vm = VarMap::new();
        PairAlignModel::load(&cfg, seeded_varmap(&student_vm, 2, &dev)).unwrap();
        let mut teacher = EmaTeacher::from_varmap(&teacher_vm).unwrap();
        let before = teacher.clone();
        let decay = 0.9;
        teacher.update(&student_vm, decay).unwrap();
        let student = student_vm.data().lock().unwrap();
        for (name, t) in teacher.weights() {
            let t0 = flat(&before.weights()[name]);
            let s = flat(student[name].as_tensor());
            // The same f32 operations in the same order: equal bit for bit.
            let want: Vec<f32> = t0
                .iter()
                .zip(&s)
                .map(|(a, b)| a * decay as f32 + b * (1.0 - decay) as f32)
                .collect();
            assert_eq!(flat(t), want, "{name}");
        }
        drop(student);
        // Decay 0 copies the student; decay 1 keeps the teacher.
        let mut copy = before.clone();
        copy.update(&student_vm, 0.0).unwrap();
        let mut kept = before.clone();
        kept.update(&student_vm, 1.0).unwrap();
        let student = student_vm.data().lock().unwrap();
        for name in before.weights().keys() {
            assert_eq!(flat(&copy.weights()[name]), flat(student[name].as_tensor()));
            assert_eq!(flat(&kept.weights()[name]), flat(&before.weights()[name]));
        }
        drop(student);
        // The teacher's model runs with its weights; a student of another shape is refused.
        teacher.model(&cfg, &dev).unwrap();
        let other = VarMap::new();
        PairAlignModel::load(
            &PairAlignConfig {
                layers: 2,
                ..tiny()
            },
            seeded_varmap(&other, 3, &dev),
        )
        .unwrap();
        assert!(teacher.update(&other, 0.5).is_err());
        assert!(teacher.update(&student_vm, 1.5).is_err());
    }
}
