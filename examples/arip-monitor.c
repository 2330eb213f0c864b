/* arip-monitor.c: a GTK 4 window on running workers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Pick a batch of CPU-heavy jobs (count the primes in ranges, with a job
 * that crashes and one that is stuck among them) and a limit, and watch
 * every worker go through its states: its pid, a progress bar, the time
 * it has run, its last message, and buttons to interrupt, stop and kill it.
 * The header shows the limiter (slots in use, jobs waiting for one) and,
 * on a pool, its workers; a crash's signal and backtrace show in the pane
 * below. Everything runs on the main loop: the window never freezes.
 *
 * `arip-monitor --self-test DIR [--pool]` is the test hook: it starts a
 * batch, takes a screenshot while jobs are in progress, stops the stuck
 * job once the others are done, prints every row when all are FINISHED,
 * takes a second screenshot, and exits 0 if the rows are what they should
 * be. Each row is a line "row\tLABEL\tFUNCTION\tFROM-TO\tSTATE\tSIGNAL\tOUTCOME"
 * that tests/monitor-check.py checks again (it counts the primes itself).
 */
#define _GNU_SOURCE 1   /* sigabbrev_np() */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gtk/gtk.h>
#include <arip.h>

/* ---------------------------------------------------------------------- */
/* What the workers run                                                    */

static gboolean
is_prime (guint32 n)
{
  if (n < 2)
    return FALSE;
  for (guint32 d = 2; d * d <= n; d++)
    if (n % d == 0)
      return FALSE;
  return TRUE;
}

/* (uu): the number of primes in [from, to), by trial division, saying how
 * far it is as it goes; stops early when interrupted. */
static void
count_primes (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  guint32 from, to, count = 0;
  guint32 step;

  g_variant_get (args, "(uu)", &from, &to);
  step = MAX ((to - from) / 50, 1);
  for (guint32 n = from; n < to; n++)
    {
      if (is_prime (n))
        count++;
      if ((n - from) % step == step - 1)
        {
          g_autofree char *said = g_strdup_printf ("%u primes below %u", count, n + 1);

          if (g_cancellable_is_cancelled (cancellable))
            {
              arip_call_return_error_literal (call, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                              "interrupted");
              return;
            }
          arip_call_set_progress (call, (double) (n - from + 1) / (to - from));
          arip_call_send_message (call, g_variant_new_string (said));
        }
    }
  arip_call_return_value (call, g_variant_new ("(u)", count));
}

/* (): works a little, then dereferences a NULL pointer. */
static void
crash (AripCall *call, GVariant *args, gpointer user_data)
{
  /* volatile, twice: the compiler may neither assume it is NULL nor drop
   * the write. */
  volatile int *volatile nowhere = NULL;

  arip_call_send_message (call, g_variant_new_string ("about to crash"));
  g_usleep (300 * 1000);
  *nowhere = 1;
}

/* (): hangs, deaf to interrupts: only a stop's SIGTERM or a kill ends it. */
static void
stuck (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_send_message (call, g_variant_new_string ("stuck, ignoring interrupts"));
  for (;;)
    g_usleep (G_USEC_PER_SEC);
}

/* ---------------------------------------------------------------------- */
/* A job: one row                                                          */

#define MONITOR_TYPE_JOB (monitor_job_get_type ())
G_DECLARE_FINAL_TYPE (MonitorJob, monitor_job, MONITOR, JOB, GObject)

struct _MonitorJob
{
  GObject       parent_instance;
  char         *label;
  char         *function;
  AripProcess  *process;
  guint32       from, to;       /* count_primes' range */
  gint64        started_us;     /* when it began executing; 0 before */
  gint64        ended_us;
  char         *message;        /* its last message */
  char         *outcome;        /* its result or error, once FINISHED */
  char         *detail;         /* the whole error, for the pane */
  gboolean      ok;
};

G_DEFINE_FINAL_TYPE (MonitorJob, monitor_job, G_TYPE_OBJECT)

enum { JOB_CHANGED, N_JOB_SIGNALS };
static guint job_signals[N_JOB_SIGNALS];

static void
monitor_job_finalize (GObject *object)
{
  MonitorJob *self = MONITOR_JOB (object);

  g_free (self->label);
  g_free (self->function);
  g_clear_object (&self->process);
  g_free (self->message);
  g_free (self->outcome);
  g_free (self->detail);
  G_OBJECT_CLASS (monitor_job_parent_class)->finalize (object);
}

static void
monitor_job_class_init (MonitorJobClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = monitor_job_finalize;
  job_signals[JOB_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                           G_TYPE_NONE, 0);
}

static void
monitor_job_init (MonitorJob *self)
{
}

static void
job_changed (MonitorJob *job)
{
  g_signal_emit (job, job_signals[JOB_CHANGED], 0);
}

static const char *
state_name (AripState state)
{
  GEnumClass *klass = g_type_class_peek (ARIP_TYPE_STATE);
  GEnumValue *value = klass != NULL ? g_enum_get_value (klass, state) : NULL;

  return value != NULL ? value->value_nick : "?";
}

static char *
job_elapsed (MonitorJob *job)
{
  gint64 end = job->ended_us != 0 ? job->ended_us : g_get_monotonic_time ();

  if (job->started_us == 0)
    return g_strdup ("–");
  return g_strdup_printf ("%.1f s", (end - job->started_us) / 1e6);
}

/* ---------------------------------------------------------------------- */
/* The window                                                              */

typedef struct {
  GtkApplication *app;
  GtkWindow      *window;
  GListStore     *jobs;
  GtkSingleSelection *selection;
  GtkLabel       *status;
  GtkTextBuffer  *detail;
  GtkSpinButton  *n_jobs;
  GtkSpinButton  *limit;
  GtkCheckButton *with_crash;
  GtkCheckButton *with_stuck;
  GtkCheckButton *use_pool;
  GtkButton      *start;
  AripPool       *pool;
  AripLauncher   *launcher;
  guint           tick_id;

  /* The test hook. */
  char           *self_test_dir;
  gboolean        self_test_pool;
  gboolean        shot_running;     /* the mid-progress picture: taken */
  gboolean        shot_running_due; /* ... or about to be */
  gboolean        stopped_stuck;
  gboolean        done;
  int             status_code;
} Monitor;

static Monitor monitor;

static MonitorJob *
job_at (guint i)
{
  return g_list_model_get_item (G_LIST_MODEL (monitor.jobs), i);
}

static void
update_status (void)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (monitor.jobs));
  guint waiting = 0, running = 0, finished = 0;
  g_autoptr(GString) text = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(MonitorJob) job = job_at (i);
      AripState state = arip_process_get_state (job->process);

      if (state == ARIP_STATE_FINISHED)
        finished++;
      else if (state == ARIP_STATE_INITIALIZING && arip_process_get_pid (job->process) == 0)
        waiting++;
      else
        running++;
    }
  if (monitor.pool != NULL)
    g_string_append_printf (text, "Pool: %u of %u workers · ",
                            arip_pool_get_n_workers (monitor.pool),
                            arip_pool_get_max_workers (monitor.pool));
  g_string_append_printf (text, "Limiter: %u of %u slots in use · %u waiting · "
                          "%u running · %u finished",
                          arip_get_running_processes (), arip_get_max_processes (),
                          waiting, running, finished);
  gtk_label_set_text (monitor.status, text->str);
}

static void
show_detail (void)
{
  g_autoptr(MonitorJob) job = gtk_single_selection_get_selected_item (monitor.selection) != NULL
                              ? g_object_ref (gtk_single_selection_get_selected_item (monitor.selection))
                              : NULL;
  g_autofree char *text = NULL;

  if (job == NULL)
    text = g_strdup ("Select a job to see its details.");
  else
    text = g_strdup_printf ("%s — %s (pid %d), %s\n\n%s", job->label, job->function,
                            (int) arip_process_get_pid (job->process),
                            state_name (arip_process_get_state (job->process)),
                            job->detail != NULL ? job->detail
                                                : job->outcome != NULL ? job->outcome
                                                                       : "Still running.");
  /* Only when it changed: setting it again would scroll the pane back. */
  {
    GtkTextIter start, end;
    g_autofree char *shown = NULL;

    gtk_text_buffer_get_bounds (monitor.detail, &start, &end);
    shown = gtk_text_buffer_get_text (monitor.detail, &start, &end, FALSE);
    if (!g_str_equal (shown, text))
      gtk_text_buffer_set_text (monitor.detail, text, -1);
  }
}

/* ---------------------------------------------------------------------- */
/* Screenshots (the test hook)                                            */

static gboolean
save_screenshot (const char *name)
{
  GtkWidget *widget = GTK_WIDGET (monitor.window);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  g_autoptr(GtkSnapshot) snapshot = gtk_snapshot_new ();
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  g_autofree char *path = g_build_filename (monitor.self_test_dir, name, NULL);
  GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (monitor.window));

  if (width <= 0 || height <= 0 || renderer == NULL)
    return FALSE;
  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), width, height);
  node = gtk_snapshot_to_node (snapshot);
  if (node == NULL)
    return FALSE;
  texture = gsk_renderer_render_texture (renderer, node,
                                         &GRAPHENE_RECT_INIT (0, 0, width, height));
  if (!gdk_texture_save_to_png (texture, path))
    {
      g_printerr ("arip-monitor: could not save %s\n", path);
      return FALSE;
    }
  printf ("screenshot %s\n", path);
  return TRUE;
}

static void
self_test_report (void)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (monitor.jobs));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(MonitorJob) job = job_at (i);

      g_autofree char *range = job->to > 0 ? g_strdup_printf ("%u-%u", job->from, job->to)
                                           : g_strdup ("-");
      const char *abbrev = arip_process_get_if_signaled (job->process)
                             ? sigabbrev_np (arip_process_get_term_sig (job->process)) : NULL;
      g_autofree char *sig = abbrev != NULL ? g_strconcat ("SIG", abbrev, NULL) : g_strdup ("-");

      printf ("row\t%s\t%s\t%s\t%s\t%s\t%s\n", job->label, job->function, range,
              state_name (arip_process_get_state (job->process)), sig,
              job->outcome != NULL ? job->outcome : "-");
    }
  fflush (stdout);
}

/* A picture is taken right after GTK painted the window: its layout is
 * done then, and a GtkWidgetPaintable made at that moment draws it whole
 * (made while a relayout is pending, it draws nothing). */
typedef void (*ShotDone) (gboolean saved);

static struct
{
  const char *name;
  ShotDone    done;
  gulong      handler;
  guint       tries;
} shot;

static void
on_after_paint (GdkFrameClock *clock,
                gpointer       user_data)
{
  gboolean saved = save_screenshot (shot.name);

  if (!saved && ++shot.tries < 10)
    {
      gtk_widget_queue_draw (GTK_WIDGET (monitor.window));
      return;
    }
  g_clear_signal_handler (&shot.handler, clock);
  shot.done (saved);
}

static void
take_screenshot (const char *name,
                 ShotDone    done)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (monitor.window));

  g_assert (shot.handler == 0);
  shot.name = name;
  shot.done = done;
  shot.tries = 0;
  shot.handler = g_signal_connect (clock, "after-paint", G_CALLBACK (on_after_paint), NULL);
  gtk_widget_queue_draw (GTK_WIDGET (monitor.window));
}

static void
on_running_shot (gboolean saved)
{
  monitor.shot_running = saved;
}

static void
take_running_screenshot (gpointer data)
{
  take_screenshot ("monitor-running.png", on_running_shot);
}

static void stop_job (MonitorJob *job);
static void self_test_finish (gpointer data);

/* Runs at every change: what the test hook waits for. */
static void
self_test_step (void)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (monitor.jobs));
  guint finished = 0, unfinished_others = 0, in_progress = 0;
  MonitorJob *stuck_job = NULL;

  if (monitor.self_test_dir == NULL || monitor.done || n == 0)
    return;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(MonitorJob) job = job_at (i);
      AripState state = arip_process_get_state (job->process);
      double progress = arip_process_get_progress (job->process);

      if (state == ARIP_STATE_FINISHED)
        finished++;
      else if (g_str_equal (job->function, "stuck"))
        stuck_job = job;
      else
        unfinished_others++;
      if (state == ARIP_STATE_EXECUTING && progress > 0.2 && progress < 0.8)
        in_progress++;
    }

  /* Mid-progress: a job between 20 and 80 %, after the crash came. */
  if (!monitor.shot_running_due && in_progress > 0 && finished > 0)
    {
      /* A little later: the rows draw what just changed first. */
      monitor.shot_running_due = TRUE;
      g_timeout_add_once (300, take_running_screenshot, NULL);
    }

  if (unfinished_others == 0 && stuck_job != NULL && !monitor.stopped_stuck)
    {
      monitor.stopped_stuck = TRUE;
      stop_job (stuck_job);
    }

  if (finished == n)
    {
      monitor.done = TRUE;
      /* Let the last rows draw before the second picture. */
      g_timeout_add_once (300, self_test_finish, NULL);
    }
}

/* Every row as it should be: the primes counted, the crash's SIGSEGV,
 * the stuck job ended by the stop's SIGTERM. */
static gboolean
self_test_rows_ok (void)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (monitor.jobs));
  gboolean ok = TRUE;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(MonitorJob) job = job_at (i);
      gboolean signaled = arip_process_get_if_signaled (job->process);
      gint sig = signaled ? arip_process_get_term_sig (job->process) : 0;

      if (arip_process_get_state (job->process) != ARIP_STATE_FINISHED)
        ok = FALSE;
      else if (g_str_equal (job->function, "count_primes"))
        ok = ok && job->ok;
      else if (g_str_equal (job->function, "crash"))
        ok = ok && sig == SIGSEGV && job->detail != NULL && strstr (job->detail, "Backtrace") != NULL;
      else
        ok = ok && sig == SIGTERM;
    }
  return ok;
}

static void
on_finished_shot (gboolean saved)
{
  if (!saved || !monitor.shot_running)
    {
      g_printerr ("arip-monitor: a screenshot is missing\n");
      monitor.status_code = 1;
    }
  g_application_quit (G_APPLICATION (monitor.app));
}

static void
self_test_finish (gpointer data)
{
  if (shot.handler != 0)
    {
      /* The first picture is still being taken. */
      g_timeout_add_once (100, self_test_finish, NULL);
      return;
    }
  self_test_report ();
  if (!self_test_rows_ok ())
    {
      g_printerr ("arip-monitor: a row is not what it should be\n");
      monitor.status_code = 1;
    }
  take_screenshot ("monitor-finished.png", on_finished_shot);
}

/* ---------------------------------------------------------------------- */
/* Running the jobs                                                       */

static void
on_state_changed (AripProcess *process,
                  AripState    old_state,
                  AripState    new_state,
                  gpointer     user_data)
{
  MonitorJob *job = user_data;

  if (new_state == ARIP_STATE_EXECUTING && job->started_us == 0)
    job->started_us = g_get_monotonic_time ();
  job_changed (job);
  update_status ();
}

static void
on_message (AripProcess *process,
            GVariant    *message,
            gpointer     user_data)
{
  MonitorJob *job = user_data;

  g_free (job->message);
  job->message = g_variant_is_of_type (message, G_VARIANT_TYPE_STRING)
                 ? g_variant_dup_string (message, NULL) : g_variant_print (message, FALSE);
  job_changed (job);
}

static void
on_progress (GObject    *object,
             GParamSpec *pspec,
             gpointer    user_data)
{
  job_changed (user_data);
}

static void
on_waited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(MonitorJob) job = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = arip_process_wait_finish (ARIP_PROCESS (source), result, &error);

  job->ended_us = g_get_monotonic_time ();
  if (job->started_us == 0)
    job->started_us = job->ended_us;
  g_clear_pointer (&job->outcome, g_free);
  if (value != NULL)
    {
      guint32 count = 0;

      g_variant_get (value, "(u)", &count);
      job->outcome = g_strdup_printf ("%u primes", count);
      job->ok = TRUE;
    }
  else
    {
      GEnumClass *codes = g_type_class_ref (ARIP_TYPE_ERROR);
      GEnumValue *code = error->domain == ARIP_ERROR ? g_enum_get_value (codes, error->code) : NULL;

      job->outcome = g_strdup (code != NULL ? code->value_name : g_quark_to_string (error->domain));
      job->detail = g_strdup (error->message);
      g_type_class_unref (codes);
    }
  job_changed (job);
  update_status ();
  show_detail ();
}

static void
on_started (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  /* The outcome comes through wait either way. */
  arip_process_start_finish (ARIP_PROCESS (source), result, &error);
}

/* Whatever changed in a job: the pane follows the selected one as it
 * goes, and the test hook looks at every change. */
static void
on_job_changed_anywhere (MonitorJob *job,
                         gpointer    user_data)
{
  if (gtk_single_selection_get_selected_item (monitor.selection) == (gpointer) job)
    show_detail ();
  self_test_step ();
}

static void
add_job (const char *label,
         const char *function,
         GVariant   *args)
{
  g_autoptr(MonitorJob) job = g_object_new (MONITOR_TYPE_JOB, NULL);

  job->label = g_strdup (label);
  job->function = g_strdup (function);
  if (args != NULL && g_variant_is_of_type (args, G_VARIANT_TYPE ("(uu)")))
    g_variant_get (args, "(uu)", &job->from, &job->to);
  job->process = monitor.pool != NULL ? arip_process_new_for_pool (monitor.pool, function, args)
                                      : arip_process_new (monitor.launcher, function, args);
  g_signal_connect_object (job->process, "state-changed", G_CALLBACK (on_state_changed), job, 0);
  g_signal_connect_object (job->process, "message", G_CALLBACK (on_message), job, 0);
  g_signal_connect_object (job->process, "notify::progress", G_CALLBACK (on_progress), job, 0);
  g_signal_connect (job, "changed", G_CALLBACK (on_job_changed_anywhere), NULL);
  g_list_store_append (monitor.jobs, job);

  arip_process_start_async (job->process, NULL, on_started, NULL);
  arip_process_wait_async (job->process, NULL, on_waited, g_object_ref (job));
}

static void
on_start_clicked (GtkButton *button,
                  gpointer   user_data)
{
  guint n = (guint) gtk_spin_button_get_value_as_int (monitor.n_jobs);
  guint limit = (guint) gtk_spin_button_get_value_as_int (monitor.limit);

  g_list_store_remove_all (monitor.jobs);
  arip_set_max_processes (limit);
  g_clear_object (&monitor.pool);
  if (gtk_check_button_get_active (monitor.use_pool))
    monitor.pool = arip_pool_new (monitor.launcher, limit);

  for (guint i = 0; i < n; i++)
    {
      guint32 from = 20000000 * (i + 1), to = from + 2000000 + 500000 * i;
      g_autofree char *label = g_strdup_printf ("primes %u–%u M", from / 1000000,
                                                to / 1000000);

      add_job (label, "count_primes", g_variant_new ("(uu)", from, to));
      /* The crash second, the stuck one fourth: they take their slots
       * among the others. */
      if (i == 0 && gtk_check_button_get_active (monitor.with_crash))
        add_job ("crash", "crash", NULL);
      if (i == 2 && gtk_check_button_get_active (monitor.with_stuck))
        add_job ("stuck", "stuck", NULL);
    }
  update_status ();
}

/* ---------------------------------------------------------------------- */
/* The buttons of a row                                                    */

static void
on_stopped (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!arip_process_stop_finish (ARIP_PROCESS (source), result, &error))
    g_printerr ("arip-monitor: stopping: %s\n", error->message);
}

static void
stop_job (MonitorJob *job)
{
  arip_process_stop_async (job->process, NULL, on_stopped, NULL);
}

static void
on_action (GtkButton *button,
           gpointer   user_data)
{
  MonitorJob *job = g_object_get_data (G_OBJECT (button), "job");
  const char *action = user_data;

  if (job == NULL || arip_process_get_state (job->process) == ARIP_STATE_FINISHED)
    return;
  if (g_str_equal (action, "interrupt"))
    arip_process_interrupt (job->process);
  else if (g_str_equal (action, "stop"))
    stop_job (job);
  else
    arip_process_kill (job->process);
}

/* ---------------------------------------------------------------------- */
/* The columns                                                             */

typedef enum {
  COLUMN_JOB, COLUMN_PID, COLUMN_STATE, COLUMN_PROGRESS, COLUMN_ELAPSED, COLUMN_MESSAGE,
  COLUMN_OUTCOME, COLUMN_ACTIONS,
} Column;

static void
fill_cell (GtkListItem *item,
           MonitorJob  *job)
{
  GtkWidget *child = gtk_list_item_get_child (item);
  Column column = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (child), "column"));
  AripState state = arip_process_get_state (job->process);
  g_autofree char *text = NULL;

  switch (column)
    {
    case COLUMN_JOB:
      text = g_strdup_printf ("%s\n<small>%s</small>", job->label, job->function);
      gtk_label_set_markup (GTK_LABEL (child), text);
      return;
    case COLUMN_PID:
      text = arip_process_get_pid (job->process) > 0
             ? g_strdup_printf ("%d", (int) arip_process_get_pid (job->process)) : g_strdup ("–");
      break;
    case COLUMN_STATE:
      text = g_strdup (state_name (state));
      break;
    case COLUMN_PROGRESS:
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (child),
                                     job->ok ? 1.0 : arip_process_get_progress (job->process));
      return;
    case COLUMN_ELAPSED:
      text = job_elapsed (job);
      break;
    case COLUMN_MESSAGE:
      text = g_strdup (job->message != NULL ? job->message : "");
      break;
    case COLUMN_OUTCOME:
      text = g_strdup (job->outcome != NULL ? job->outcome : "");
      break;
    case COLUMN_ACTIONS:
      for (GtkWidget *button = gtk_widget_get_first_child (child); button != NULL;
           button = gtk_widget_get_next_sibling (button))
        {
          g_object_set_data (G_OBJECT (button), "job", job);
          gtk_widget_set_sensitive (button, state != ARIP_STATE_FINISHED);
        }
      return;
    }
  gtk_label_set_text (GTK_LABEL (child), text);
}

static void
on_job_changed (MonitorJob  *job,
                GtkListItem *item)
{
  fill_cell (item, job);
}

static void
setup_cell (GtkSignalListItemFactory *factory,
            GtkListItem              *item,
            gpointer                  user_data)
{
  Column column = GPOINTER_TO_INT (user_data);
  GtkWidget *child;

  if (column == COLUMN_PROGRESS)
    {
      child = gtk_progress_bar_new ();
      gtk_widget_set_valign (child, GTK_ALIGN_CENTER);
      gtk_widget_set_size_request (child, 120, -1);
    }
  else if (column == COLUMN_ACTIONS)
    {
      static const char * const actions[][2] = {
        { "interrupt", "Interrupt" }, { "stop", "Stop" }, { "kill", "Kill" },
      };

      child = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
      for (guint i = 0; i < G_N_ELEMENTS (actions); i++)
        {
          GtkWidget *button = gtk_button_new_with_label (actions[i][1]);

          g_signal_connect (button, "clicked", G_CALLBACK (on_action), (gpointer) actions[i][0]);
          gtk_box_append (GTK_BOX (child), button);
        }
    }
  else
    {
      child = gtk_label_new (NULL);
      gtk_label_set_xalign (GTK_LABEL (child), 0);
      if (column == COLUMN_MESSAGE)
        {
          gtk_label_set_ellipsize (GTK_LABEL (child), PANGO_ELLIPSIZE_END);
          gtk_label_set_width_chars (GTK_LABEL (child), 24);
        }
    }
  g_object_set_data (G_OBJECT (child), "column", user_data);
  gtk_list_item_set_child (item, child);
}

static void
bind_cell (GtkSignalListItemFactory *factory,
           GtkListItem              *item,
           gpointer                  user_data)
{
  MonitorJob *job = gtk_list_item_get_item (item);

  fill_cell (item, job);
  g_signal_connect (job, "changed", G_CALLBACK (on_job_changed), item);
}

static void
unbind_cell (GtkSignalListItemFactory *factory,
             GtkListItem              *item,
             gpointer                  user_data)
{
  g_signal_handlers_disconnect_by_func (gtk_list_item_get_item (item), on_job_changed, item);
}

static void
add_column (GtkColumnView *view,
            const char    *title,
            Column         column,
            gboolean       expand)
{
  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
  GtkColumnViewColumn *view_column;

  g_signal_connect (factory, "setup", G_CALLBACK (setup_cell), GINT_TO_POINTER (column));
  g_signal_connect (factory, "bind", G_CALLBACK (bind_cell), GINT_TO_POINTER (column));
  g_signal_connect (factory, "unbind", G_CALLBACK (unbind_cell), GINT_TO_POINTER (column));
  view_column = gtk_column_view_column_new (title, factory);
  gtk_column_view_column_set_expand (view_column, expand);
  gtk_column_view_append_column (view, view_column);
  g_object_unref (view_column);
}

/* Elapsed times move while jobs run. */
static gboolean
on_tick (gpointer user_data)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (monitor.jobs));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(MonitorJob) job = job_at (i);

      if (job->started_us != 0 && job->ended_us == 0)
        job_changed (job);
    }
  update_status ();
  return G_SOURCE_CONTINUE;
}

/* ---------------------------------------------------------------------- */

static GtkWidget *
labelled (const char *text,
          GtkWidget  *widget)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);

  gtk_box_append (GTK_BOX (box), gtk_label_new (text));
  gtk_box_append (GTK_BOX (box), widget);
  return box;
}

static void
on_activate (GtkApplication *app,
             gpointer        user_data)
{
  GtkWidget *window, *content, *controls, *header, *view, *scrolled, *paned, *text_view;

  window = gtk_application_window_new (app);
  monitor.window = GTK_WINDOW (window);
  gtk_window_set_title (monitor.window, "arip monitor");
  gtk_window_set_default_size (monitor.window, 1180, 800);

  header = gtk_header_bar_new ();
  monitor.start = GTK_BUTTON (gtk_button_new_with_label ("Start the batch"));
  gtk_widget_add_css_class (GTK_WIDGET (monitor.start), "suggested-action");
  g_signal_connect (monitor.start, "clicked", G_CALLBACK (on_start_clicked), NULL);
  gtk_header_bar_pack_end (GTK_HEADER_BAR (header), GTK_WIDGET (monitor.start));
  gtk_window_set_titlebar (monitor.window, header);

  content = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_margin_start (content, 8);
  gtk_widget_set_margin_end (content, 8);
  gtk_widget_set_margin_top (content, 8);
  gtk_widget_set_margin_bottom (content, 8);

  controls = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 18);
  monitor.n_jobs = GTK_SPIN_BUTTON (gtk_spin_button_new_with_range (1, 32, 1));
  gtk_spin_button_set_value (monitor.n_jobs, 6);
  monitor.limit = GTK_SPIN_BUTTON (gtk_spin_button_new_with_range (1, 16, 1));
  gtk_spin_button_set_value (monitor.limit, 2);
  monitor.with_crash = GTK_CHECK_BUTTON (gtk_check_button_new_with_label ("a crashing job"));
  gtk_check_button_set_active (monitor.with_crash, TRUE);
  monitor.with_stuck = GTK_CHECK_BUTTON (gtk_check_button_new_with_label ("a stuck job"));
  gtk_check_button_set_active (monitor.with_stuck, TRUE);
  monitor.use_pool = GTK_CHECK_BUTTON (gtk_check_button_new_with_label ("on a pool"));
  gtk_box_append (GTK_BOX (controls), labelled ("Prime jobs", GTK_WIDGET (monitor.n_jobs)));
  gtk_box_append (GTK_BOX (controls), GTK_WIDGET (monitor.with_crash));
  gtk_box_append (GTK_BOX (controls), GTK_WIDGET (monitor.with_stuck));
  gtk_box_append (GTK_BOX (controls), labelled ("At most at once", GTK_WIDGET (monitor.limit)));
  gtk_box_append (GTK_BOX (controls), GTK_WIDGET (monitor.use_pool));
  gtk_box_append (GTK_BOX (content), controls);

  monitor.status = GTK_LABEL (gtk_label_new (NULL));
  gtk_label_set_xalign (monitor.status, 0);
  gtk_widget_add_css_class (GTK_WIDGET (monitor.status), "dim-label");
  gtk_box_append (GTK_BOX (content), GTK_WIDGET (monitor.status));

  monitor.jobs = g_list_store_new (MONITOR_TYPE_JOB);
  monitor.selection = gtk_single_selection_new (G_LIST_MODEL (g_object_ref (monitor.jobs)));
  gtk_single_selection_set_autoselect (monitor.selection, FALSE);
  g_signal_connect_swapped (monitor.selection, "notify::selected", G_CALLBACK (show_detail), NULL);
  view = gtk_column_view_new (GTK_SELECTION_MODEL (monitor.selection));
  gtk_column_view_set_show_row_separators (GTK_COLUMN_VIEW (view), TRUE);
  add_column (GTK_COLUMN_VIEW (view), "Job", COLUMN_JOB, FALSE);
  add_column (GTK_COLUMN_VIEW (view), "PID", COLUMN_PID, FALSE);
  add_column (GTK_COLUMN_VIEW (view), "State", COLUMN_STATE, FALSE);
  add_column (GTK_COLUMN_VIEW (view), "Progress", COLUMN_PROGRESS, FALSE);
  add_column (GTK_COLUMN_VIEW (view), "Elapsed", COLUMN_ELAPSED, FALSE);
  add_column (GTK_COLUMN_VIEW (view), "Last message", COLUMN_MESSAGE, TRUE);
  add_column (GTK_COLUMN_VIEW (view), "Outcome", COLUMN_OUTCOME, FALSE);
  add_column (GTK_COLUMN_VIEW (view), "", COLUMN_ACTIONS, FALSE);
  scrolled = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), view);
  gtk_widget_set_vexpand (scrolled, TRUE);

  text_view = gtk_text_view_new ();
  gtk_text_view_set_editable (GTK_TEXT_VIEW (text_view), FALSE);
  gtk_text_view_set_monospace (GTK_TEXT_VIEW (text_view), TRUE);
  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (text_view), GTK_WRAP_WORD_CHAR);
  monitor.detail = gtk_text_view_get_buffer (GTK_TEXT_VIEW (text_view));
  {
    GtkWidget *detail_scrolled = gtk_scrolled_window_new ();

    gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (detail_scrolled), text_view);
    paned = gtk_paned_new (GTK_ORIENTATION_VERTICAL);
    gtk_paned_set_start_child (GTK_PANED (paned), scrolled);
    gtk_paned_set_end_child (GTK_PANED (paned), detail_scrolled);
    gtk_paned_set_position (GTK_PANED (paned), 470);
  }
  gtk_widget_set_vexpand (paned, TRUE);
  gtk_box_append (GTK_BOX (content), paned);
  gtk_window_set_child (monitor.window, content);

  show_detail ();
  update_status ();
  monitor.tick_id = g_timeout_add (200, on_tick, NULL);
  gtk_window_present (monitor.window);

  if (monitor.self_test_dir != NULL)
    {
      /* The crash is the selected row: its backtrace is in the pictures. */
      gtk_check_button_set_active (monitor.use_pool, monitor.self_test_pool);
      on_start_clicked (NULL, NULL);
      gtk_single_selection_set_selected (monitor.selection, 1);
    }
}

static gboolean
on_watchdog (gpointer user_data)
{
  g_printerr ("arip-monitor: the self-test did not end within 120 s\n");
  self_test_report ();
  monitor.status_code = 1;
  g_application_quit (G_APPLICATION (monitor.app));
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  const GOptionEntry entries[] = {
    { "self-test", 0, 0, G_OPTION_ARG_FILENAME, &monitor.self_test_dir,
      "Run a batch, check it, save screenshots in DIR, and quit", "DIR" },
    { "pool", 0, 0, G_OPTION_ARG_NONE, &monitor.self_test_pool, "With --self-test: on a pool", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) options = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  /* A worker is this program again: only registrations come first. */
  arip_register_function ("count_primes", count_primes, NULL, NULL);
  arip_register_function ("crash", crash, NULL, NULL);
  arip_register_function ("stuck", stuck, NULL, NULL);
  arip_init (&argc, &argv);

  options = g_option_context_new (NULL);
  g_option_context_set_summary (options, "Watch arip's workers in a GTK 4 window.");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  g_type_class_ref (ARIP_TYPE_STATE);
  monitor.launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  /* A stop waits 1 s for the interrupt, 1 s for SIGTERM. */
  arip_launcher_set_stop_timeouts (monitor.launcher, 1000, 1000);

  monitor.app = gtk_application_new ("org.arip.Monitor", G_APPLICATION_NON_UNIQUE);
  g_signal_connect (monitor.app, "activate", G_CALLBACK (on_activate), NULL);
  if (monitor.self_test_dir != NULL)
    {
      g_mkdir_with_parents (monitor.self_test_dir, 0755);
      g_timeout_add_seconds (120, on_watchdog, NULL);
    }
  {
    char *app_argv[] = { argv[0], NULL };

    status = g_application_run (G_APPLICATION (monitor.app), 1, app_argv);
  }
  g_clear_object (&monitor.pool);
  g_object_unref (monitor.launcher);
  g_object_unref (monitor.app);
  return status != 0 ? status : monitor.status_code;
}
