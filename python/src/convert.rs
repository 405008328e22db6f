//! Values across the boundary: Python arguments (samples, tokens, `k`, `top`) to the library's
//! types, and the library's serializable results to Python dicts and lists with the fields of
//! the HTTP API's JSON (the server serializes the same structs).

use numpy::{AllowTypeChange, PyArrayLike1};
use pairalign_archive::{AssetMetadata, EditBudget, SearchOptions, Symbol};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// `value` serialized as JSON would be, as Python objects: objects become dicts, arrays lists,
/// `null` `None`.
pub fn to_python<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    json_to_python(py, &json)
}

fn json_to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(fields) => {
            let dict = PyDict::new(py);
            for (key, item) in fields {
                dict.set_item(key, json_to_python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Mono samples from a 1-D array or sequence of numbers (converted to float32), copied: the
/// work on them runs without the GIL, when Python code could otherwise change the array under
/// it.
pub fn samples(array: &PyArrayLike1<'_, f32, AllowTypeChange>) -> Vec<f32> {
    array.as_array().to_vec()
}

/// `options` with `k` and `top` as given from Python, checked as the HTTP API checks them: `k`
/// an integer edit budget or a fraction in [0, 1); `top` at least 1.
pub fn search_options(
    mut options: SearchOptions,
    k: Option<&Bound<'_, PyAny>>,
    top: Option<usize>,
) -> Result<SearchOptions> {
    if let Some(top) = top {
        if top == 0 {
            return Err(Error::InvalidInput("top must be at least 1, got 0".into()));
        }
        options.top = top;
    }
    if let Some(k) = k {
        options.k = Some(edit_budget(k)?);
    }
    Ok(options)
}

fn edit_budget(k: &Bound<'_, PyAny>) -> Result<EditBudget> {
    let bad = || {
        Error::InvalidInput(format!(
            "k must be a non-negative integer or a fraction in [0, 1), got {}",
            k.repr().map_or_else(|_| "?".into(), |r| r.to_string())
        ))
    };
    if k.is_instance_of::<PyBool>() {
        return Err(bad());
    }
    if k.is_instance_of::<PyFloat>() {
        let f: f64 = k.extract().map_err(|_| bad())?;
        // The CLI's and the HTTP API's reading: 1.0 is the integer 1, 0.3 a fraction.
        return Ok(EditBudget::parse(&f.to_string())?);
    }
    let k: i64 = k.extract().map_err(|_| bad())?;
    u32::try_from(k)
        .map(EditBudget::Absolute)
        .map_err(|_| bad())
}

/// A token string from any sequence of integers (a list, a numpy array of any integer type),
/// each within the symbol type's range; the database's vocabulary is checked by the engine.
pub fn tokens(tokens: &Bound<'_, PyAny>) -> Result<Vec<Symbol>> {
    let values: Vec<i64> = tokens
        .extract()
        .map_err(|_| Error::InvalidInput("tokens must be a sequence of integers".into()))?;
    values
        .iter()
        .enumerate()
        .map(|(position, &value)| {
            Symbol::try_from(value).map_err(|_| {
                Error::InvalidInput(format!(
                    "symbol {value} at position {position} is outside 0..={}",
                    Symbol::MAX
                ))
            })
        })
        .collect()
}

/// Catalog metadata from the `title`, `tags` and `file_name` keywords of a Python call.
pub fn metadata(
    title: Option<String>,
    tags: Option<Vec<String>>,
    file_name: Option<String>,
) -> AssetMetadata {
    AssetMetadata {
        title,
        tags: tags.unwrap_or_default(),
        file_name,
    }
}
