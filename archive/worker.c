/* worker.c — hashing the events chain on a second core.
 *
 * The recording's bytes are hashed twice: once for the manifest, once for the
 * segment hashes of the events chain. The manifest hash runs on the calling
 * thread; the chain runs here, on a worker, over the very same buffers: the
 * reader takes buffers from a small ring and a buffer is reused only when the
 * worker is done with it, so each byte is read once and memory stays bounded.
 */
#include "config.h"
#include "bundle-private.h"

#include <string.h>

struct _BundleRing {
  GMutex lock;
  GCond cond;
  guint n;
  gsize size;
  guint next;
  guint8 **bufs;
  guint *busy;
};

BundleRing *
bundle_ring_new (guint n, gsize size)
{
  BundleRing *r = g_new0 (BundleRing, 1);

  g_mutex_init (&r->lock);
  g_cond_init (&r->cond);
  r->n = n;
  r->size = size;
  r->bufs = g_new0 (guint8 *, n);
  r->busy = g_new0 (guint, n);
  for (guint i = 0; i < n; i++)
    r->bufs[i] = g_malloc (size);
  return r;
}

void
bundle_ring_free (BundleRing *r)
{
  if (r == NULL)
    return;
  for (guint i = 0; i < r->n; i++)
    g_free (r->bufs[i]);
  g_free (r->bufs);
  g_free (r->busy);
  g_mutex_clear (&r->lock);
  g_cond_clear (&r->cond);
  g_free (r);
}

guint8 *
bundle_ring_next (BundleRing *r, gsize *size)
{
  guint i;

  g_mutex_lock (&r->lock);
  i = r->next;
  r->next = (r->next + 1) % r->n;
  while (r->busy[i] > 0)
    g_cond_wait (&r->cond, &r->lock);
  g_mutex_unlock (&r->lock);
  *size = r->size;
  return r->bufs[i];
}

static int
ring_index_of (BundleRing *r, const void *p, gsize len)
{
  for (guint i = 0; i < r->n; i++)
    if ((const guint8 *) p >= r->bufs[i] && (const guint8 *) p + len <= r->bufs[i] + r->size)
      return (int) i;
  return -1;
}

static void
ring_hold (BundleRing *r, int i)
{
  g_mutex_lock (&r->lock);
  r->busy[i]++;
  g_mutex_unlock (&r->lock);
}

static void
ring_release (BundleRing *r, int i)
{
  g_mutex_lock (&r->lock);
  r->busy[i]--;
  g_cond_broadcast (&r->cond);
  g_mutex_unlock (&r->lock);
}

typedef enum { JOB_BEGIN, JOB_FEED, JOB_END, JOB_QUIT } JobKind;

typedef struct {
  JobKind kind;
  const guint8 *data;
  gsize len;
  int ring_index;      /* -1: data is a private copy */
  char *file;
  guint64 size;
} Job;

struct _BundleChainWorker {
  BundleChain *chain;
  BundleRing *ring;
  GThread *thread;
  GAsyncQueue *jobs;
  GAsyncQueue *done;   /* one result per JOB_END */
  GError *error;       /* first finding of the current file (worker side) */
};

typedef struct {
  GError *error;
  guint64 unchained;
} EndResult;

static gpointer
worker_main (gpointer data)
{
  BundleChainWorker *w = data;

  for (;;)
    {
      Job *job = g_async_queue_pop (w->jobs);
      switch (job->kind)
        {
        case JOB_BEGIN:
          bundle_chain_begin_file (w->chain, job->file);
          g_clear_error (&w->error);
          break;
        case JOB_FEED:
          if (w->error == NULL)
            bundle_chain_feed (w->chain, job->data, job->len, &w->error);
          if (job->ring_index >= 0)
            ring_release (w->ring, job->ring_index);
          else
            g_free ((gpointer) job->data);
          break;
        case JOB_END:
          {
            EndResult *res = g_new0 (EndResult, 1);
            if (w->error != NULL)
              res->error = g_steal_pointer (&w->error);
            else
              bundle_chain_end_file (w->chain, job->size, &res->unchained, &res->error);
            g_async_queue_push (w->done, res);
          }
          break;
        case JOB_QUIT:
          g_free (job);
          return NULL;
        }
      g_free (job->file);
      g_free (job);
    }
}

BundleChainWorker *
bundle_chain_worker_new (BundleChain *chain, BundleRing *ring)
{
  BundleChainWorker *w = g_new0 (BundleChainWorker, 1);

  w->chain = chain;
  w->ring = ring;
  w->jobs = g_async_queue_new ();
  w->done = g_async_queue_new ();
  w->thread = g_thread_new ("chain-hash", worker_main, w);
  return w;
}

void
bundle_chain_worker_begin (BundleChainWorker *w, const char *file)
{
  Job *job = g_new0 (Job, 1);

  job->kind = JOB_BEGIN;
  job->file = g_strdup (file);
  g_async_queue_push (w->jobs, job);
}

void
bundle_chain_worker_feed (BundleChainWorker *w, const guint8 *data, gsize len)
{
  Job *job = g_new0 (Job, 1);

  job->kind = JOB_FEED;
  job->len = len;
  job->ring_index = w->ring ? ring_index_of (w->ring, data, len) : -1;
  if (job->ring_index >= 0)
    {
      ring_hold (w->ring, job->ring_index);
      job->data = data;
    }
  else
    job->data = g_memdup2 (data, len);
  g_async_queue_push (w->jobs, job);
}

gboolean
bundle_chain_worker_end (BundleChainWorker *w, guint64 size, guint64 *unchained, GError **error)
{
  Job *job = g_new0 (Job, 1);
  EndResult *res;
  gboolean ok;

  job->kind = JOB_END;
  job->size = size;
  g_async_queue_push (w->jobs, job);
  res = g_async_queue_pop (w->done);
  ok = res->error == NULL;
  if (!ok)
    g_propagate_error (error, res->error);
  if (unchained)
    *unchained = res->unchained;
  g_free (res);
  return ok;
}

void
bundle_chain_worker_free (BundleChainWorker *w)
{
  Job *job;

  if (w == NULL)
    return;
  job = g_new0 (Job, 1);
  job->kind = JOB_QUIT;
  g_async_queue_push (w->jobs, job);
  g_thread_join (w->thread);
  g_async_queue_unref (w->jobs);
  g_async_queue_unref (w->done);
  g_clear_error (&w->error);
  g_free (w);
}
