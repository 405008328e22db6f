//! Upload jobs: large uploads are answered 202 with a job id and indexed by the writer in turn;
//! `GET /v1/jobs/{id}` reports queued, running, done (with the asset) or failed (with the error).
//! Jobs live in memory only: a restart forgets them (what they committed stays in the archive),
//! and only the newest [`crate::Limits::max_finished_jobs`] finished jobs are remembered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use crate::archive::Asset;
use crate::error::ErrorDetail;

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting in the writer's queue.
    Queued,
    /// Being decoded, tokenized and committed.
    Running,
    /// Committed: searches see it.
    Done,
    /// Nothing was added; `error` says why.
    Failed,
}

/// One upload job as `GET /v1/jobs/{id}` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Job {
    /// The job's id.
    pub id: String,
    /// Where it is.
    pub status: JobStatus,
    /// The uploaded file's name, when the client gave one.
    pub file_name: Option<String>,
    /// Seconds of audio in the upload (from its headers).
    pub duration_s: f64,
    /// The asset, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset: Option<Asset>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// All jobs of this server run.
#[derive(Debug)]
pub(crate) struct Jobs {
    table: Mutex<JobTable>,
}

#[derive(Debug)]
struct JobTable {
    next: u64,
    jobs: HashMap<String, Job>,
    /// Finished job ids, oldest first.
    finished: VecDeque<String>,
    keep_finished: usize,
}

impl Jobs {
    pub(crate) fn new(keep_finished: usize) -> Self {
        Jobs {
            table: Mutex::new(JobTable {
                next: 1,
                jobs: HashMap::new(),
                finished: VecDeque::new(),
                keep_finished,
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, JobTable> {
        // A panic while holding the lock leaves the table consistent (every change is one
        // insert or field write), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a queued job and returns its id.
    pub(crate) fn create(&self, file_name: Option<String>, duration_s: f64) -> String {
        let mut table = self.table();
        let id = table.next.to_string();
        table.next += 1;
        let job = Job {
            id: id.clone(),
            status: JobStatus::Queued,
            file_name,
            duration_s,
            asset: None,
            error: None,
        };
        table.jobs.insert(id.clone(), job);
        id
    }

    /// Forgets a job that never reached the queue.
    pub(crate) fn remove(&self, id: &str) {
        self.table().jobs.remove(id);
    }

    pub(crate) fn set_running(&self, id: &str) {
        if let Some(job) = self.table().jobs.get_mut(id) {
            job.status = JobStatus::Running;
        }
    }

    /// Records the outcome and forgets the oldest finished jobs beyond the limit.
    pub(crate) fn finish(&self, id: &str, outcome: Result<Asset, ErrorDetail>) {
        let mut table = self.table();
        let Some(job) = table.jobs.get_mut(id) else {
            return;
        };
        match outcome {
            Ok(asset) => {
                job.status = JobStatus::Done;
                job.asset = Some(asset);
            }
            Err(error) => {
                job.status = JobStatus::Failed;
                job.error = Some(error);
            }
        }
        table.finished.push_back(id.to_string());
        while table.finished.len() > table.keep_finished {
            if let Some(old) = table.finished.pop_front() {
                table.jobs.remove(&old);
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Job> {
        self.table().jobs.get(id).cloned()
    }

    /// Jobs per status, for the metrics.
    pub(crate) fn counts(&self) -> [(JobStatus, usize); 4] {
        let table = self.table();
        let count = |s| table.jobs.values().filter(|j| j.status == s).count();
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ]
        .map(|s| (s, count(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_move_through_their_states_and_old_ones_are_forgotten() {
        let jobs = Jobs::new(2);
        let ids: Vec<String> = (0..3).map(|_| jobs.create(None, 40.0)).collect();
        assert_eq!(jobs.get(&ids[0]).unwrap().status, JobStatus::Queued);
        jobs.set_running(&ids[0]);
        assert_eq!(jobs.get(&ids[0]).unwrap().status, JobStatus::Running);
        for id in &ids {
            let error = ErrorDetail {
                code: "undecodable_audio".into(),
                message: "not audio".into(),
            };
            jobs.finish(id, Err(error));
        }
        assert!(
            jobs.get(&ids[0]).is_none(),
            "the oldest finished job is forgotten"
        );
        let last = jobs.get(&ids[2]).unwrap();
        assert_eq!(last.status, JobStatus::Failed);
        assert_eq!(last.error.unwrap().code, "undecodable_audio");
        assert_eq!(jobs.counts()[3], (JobStatus::Failed, 2));
    }
}
