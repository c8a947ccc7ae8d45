import { element, getJson, showNotice, storedSetting } from './api.js';
import { drawLossChart } from './loss-chart.js';

const adminKeySetting = storedSetting('adminKey');
const POLL_MILLISECONDS = 2000;
const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

const ui = {
  form: document.getElementById('admin-key-form'),
  adminKey: document.getElementById('admin-key'),
  notice: document.getElementById('notice'),
  jobs: document.getElementById('jobs'),
  noJobs: document.getElementById('no-jobs'),
  details: document.getElementById('job-details'),
  title: document.getElementById('job-title'),
  fields: document.getElementById('job-fields'),
  chart: document.getElementById('loss-chart'),
  events: document.getElementById('events'),
};

/** The job shown in the details pane, and its events newest first (as the API lists them). */
let selected = null;
let poll = null;
let listPoll = null;

const key = () => ui.adminKey.value.trim();

function formatTime(seconds, style = 'medium') {
  return seconds ? new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: style, timeStyle: style === 'short' ? 'short' : 'medium' }) : '—';
}

function statusBadge(status) {
  const badge = element('span', 'badge', status.replace(/_/g, ' '));
  badge.dataset.status = status;
  return badge;
}

async function loadJobs() {
  clearTimeout(listPoll);
  try {
    const jobs = [];
    let after = null;
    do {
      const page = await getJson(`/v1/fine_tuning/jobs?limit=100${after ? `&after=${encodeURIComponent(after)}` : ''}`, { key: key() });
      jobs.push(...page.data);
      after = page.has_more && page.data.length > 0 ? page.data[page.data.length - 1].id : null;
    } while (after);
    showNotice(ui.notice, null);
    renderJobs(jobs);
    // Statuses change on their own (queued, running, done); keep the list current while any job can still change.
    if (jobs.some(job => !FINISHED.has(job.status))) listPoll = setTimeout(loadJobs, POLL_MILLISECONDS * 2.5);
  } catch (error) {
    showNotice(ui.notice, `Could not list the jobs: ${error.message}`);
  }
}

function renderJobs(jobs) {
  ui.noJobs.hidden = jobs.length > 0;
  ui.jobs.replaceChildren(...jobs.map(job => {
    const row = element('tr');
    row.dataset.jobId = job.id;
    if (selected?.id === job.id) row.classList.add('selected');
    const open = element('button', 'link', job.id);
    open.type = 'button';
    open.addEventListener('click', () => selectJob(job.id));
    const idCell = element('td');
    idCell.append(open);
    const statusCell = element('td');
    statusCell.append(statusBadge(job.status));
    const fineTuned = element('td', 'mono truncate', job.fine_tuned_model ?? '—');
    if (job.fine_tuned_model) fineTuned.title = job.fine_tuned_model;
    row.append(idCell, statusCell, element('td', null, job.model), fineTuned,
      element('td', 'nowrap', formatTime(job.created_at, 'short')));
    return row;
  }));
}

async function selectJob(id) {
  clearTimeout(poll);
  selected = { id, events: [], job: null };
  for (const row of ui.jobs.querySelectorAll('tr')) row.classList.toggle('selected', row.dataset.jobId === id);
  ui.details.hidden = false;
  ui.title.textContent = id;
  ui.fields.replaceChildren();
  ui.events.replaceChildren();
  drawLossChart(ui.chart, []);
  await refreshSelected();
}

/** New events only: pages from the newest until one already seen, so a long job costs one small call per poll. */
async function fetchNewEvents(id, known) {
  const seen = new Set(known.map(e => e.id));
  const fresh = [];
  let after = null;
  for (;;) {
    const page = await getJson(`/v1/fine_tuning/jobs/${encodeURIComponent(id)}/events?limit=100${after ? `&after=${encodeURIComponent(after)}` : ''}`, { key: key() });
    const unseen = page.data.filter(e => !seen.has(e.id));
    fresh.push(...unseen);
    if (!page.has_more || unseen.length < page.data.length || page.data.length === 0) break;
    after = page.data[page.data.length - 1].id;
  }
  return [...fresh, ...known];
}

async function refreshSelected() {
  const current = selected;
  if (!current) return;
  clearTimeout(poll);
  try {
    const job = await getJson(`/v1/fine_tuning/jobs/${encodeURIComponent(current.id)}`, { key: key() });
    const events = await fetchNewEvents(current.id, current.events);
    if (selected !== current) return;
    const statusChanged = current.job?.status !== job.status;
    current.job = job;
    current.events = events;
    renderDetails(job, events);
    if (statusChanged) loadJobs();
    if (!FINISHED.has(job.status)) poll = setTimeout(refreshSelected, POLL_MILLISECONDS);
  } catch (error) {
    showNotice(ui.notice, `Could not read job ${current.id}: ${error.message}`);
    if (selected === current) poll = setTimeout(refreshSelected, POLL_MILLISECONDS * 2);
  }
}

function renderDetails(job, events) {
  const hyper = job.hyperparameters ?? {};
  const fields = [
    ['Status', statusBadge(job.status)],
    ['Model', job.model],
    ['Fine-tuned model', job.fine_tuned_model ?? '—'],
    ['Created', formatTime(job.created_at)],
    ['Finished', formatTime(job.finished_at)],
    ['Trained tokens', job.trained_tokens ?? '—'],
    ['Epochs', hyper.n_epochs ?? '—'],
    ['Batch size', hyper.batch_size ?? '—'],
    ['Learning rate multiplier', hyper.learning_rate_multiplier ?? '—'],
    ['LoRA rank', hyper.lora_rank === 0 ? 'full fine-tune' : hyper.lora_rank ?? '—'],
    ['Training file', job.training_file],
    ['Validation file', job.validation_file ?? '—'],
  ];
  if (job.error) fields.push(['Error', `${job.error.message}${job.error.code ? ` (${job.error.code})` : ''}`]);
  ui.fields.replaceChildren(...fields.flatMap(([name, value]) => {
    const dd = element('dd', null, value instanceof Node ? undefined : value);
    if (value instanceof Node) dd.append(value);
    return [element('dt', null, name), dd];
  }));

  // Metrics events (see FineTuningWorker): a step's {step, train_loss, ...}, an epoch's {step, valid_loss, ...}.
  const metrics = events.filter(e => e.type === 'metrics' && e.data);
  const train = metrics.filter(e => typeof e.data.train_loss === 'number').map(e => ({ step: e.data.step, loss: e.data.train_loss }));
  const valid = metrics.filter(e => typeof e.data.valid_loss === 'number').map(e => ({ step: e.data.step, loss: e.data.valid_loss }));
  drawLossChart(ui.chart, [{ name: 'train', points: train }, { name: 'valid', points: valid }]);

  ui.events.replaceChildren(...events.slice(0, 50).map(e => {
    const item = element('li', `event ${e.level}`);
    item.append(element('time', null, new Date(e.created_at * 1000).toLocaleTimeString()), element('span', null, e.message));
    return item;
  }));
}

ui.adminKey.value = adminKeySetting.get();
ui.form.addEventListener('submit', event => {
  event.preventDefault();
  adminKeySetting.set(key());
  loadJobs();
  if (selected) refreshSelected();
});

if (key()) loadJobs();
