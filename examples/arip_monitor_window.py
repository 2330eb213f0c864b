# arip_monitor_window.py: the window of examples/arip-monitor.py.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Imported by arip-monitor.py in the parent only, after Arip.init(): see
# there why. main() takes the three functions the jobs run.

import argparse
import ctypes
import signal
import sys
import time

import gi

gi.require_version('Arip', '1.0')
gi.require_version('Gtk', '4.0')

from gi.repository import Arip, GLib, GObject, Gio, Gtk  # noqa: E402


# -------------------------------------------------------------------------
# A job: one row

class Job(GObject.Object):
    __gsignals__ = {'changed': (GObject.SignalFlags.RUN_LAST, None, ())}

    def __init__(self, label, function, args, process):
        super().__init__()
        self.label = label
        self.function = function
        self.args = args
        self.process = process
        self.started = None
        self.ended = None
        self.message = ''
        self.outcome = ''
        self.detail = None
        self.ok = False

    def elapsed(self):
        if self.started is None:
            return '–'
        return '%.1f s' % ((self.ended or time.monotonic()) - self.started)


def state_name(state):
    return state.value_nick


# -------------------------------------------------------------------------
# The window

COLUMNS = ['Job', 'PID', 'State', 'Progress', 'Elapsed', 'Last message', 'Outcome', '']


class Monitor(Gtk.Application):
    def __init__(self, self_test_dir, self_test_pool, functions):
        super().__init__(application_id='org.arip.MonitorPy',
                         flags=Gio.ApplicationFlags.NON_UNIQUE)
        # What the jobs run: registered by arip-monitor.py, the worker's script.
        self.count_primes, self.crash, self.stuck = functions
        self.self_test_dir = self_test_dir
        self.self_test_pool = self_test_pool
        self.status_code = 0
        self.shot_running = False       # the mid-progress picture: taken
        self.shot_running_due = False   # ... or about to be
        self.shot_handler = None        # a picture waits for the next paint
        self.stopped_stuck = False
        self.done = False
        self.pool = None
        self.launcher = Arip.Launcher.new(Gio.SubprocessFlags.NONE)
        # A stop waits 1 s for the interrupt, 1 s for SIGTERM.
        self.launcher.set_stop_timeouts(1000, 1000)
        self.connect('activate', self.on_activate)

    # --- building the window ---------------------------------------------

    def on_activate(self, app):
        self.window = Gtk.ApplicationWindow(application=app, title='arip monitor (Python)')
        self.window.set_default_size(1180, 800)

        header = Gtk.HeaderBar()
        start = Gtk.Button(label='Start the batch')
        start.add_css_class('suggested-action')
        start.connect('clicked', lambda *_: self.start_batch())
        header.pack_end(start)
        self.window.set_titlebar(header)

        content = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, margin_start=8,
                          margin_end=8, margin_top=8, margin_bottom=8)
        controls = Gtk.Box(spacing=18)
        self.n_jobs = Gtk.SpinButton.new_with_range(1, 32, 1)
        self.n_jobs.set_value(6)
        self.limit = Gtk.SpinButton.new_with_range(1, 16, 1)
        self.limit.set_value(2)
        self.with_crash = Gtk.CheckButton(label='a crashing job', active=True)
        self.with_stuck = Gtk.CheckButton(label='a stuck job', active=True)
        self.use_pool = Gtk.CheckButton(label='on a pool', active=self.self_test_pool)
        for label, widget in [('Prime jobs', self.n_jobs), (None, self.with_crash),
                              (None, self.with_stuck), ('At most at once', self.limit),
                              (None, self.use_pool)]:
            if label is None:
                controls.append(widget)
            else:
                box = Gtk.Box(spacing=6)
                box.append(Gtk.Label(label=label))
                box.append(widget)
                controls.append(box)
        content.append(controls)

        self.status = Gtk.Label(xalign=0)
        self.status.add_css_class('dim-label')
        content.append(self.status)

        self.jobs = Gio.ListStore(item_type=Job)
        self.selection = Gtk.SingleSelection(model=self.jobs, autoselect=False)
        self.selection.connect('notify::selected', lambda *_: self.show_detail())
        view = Gtk.ColumnView(model=self.selection, show_row_separators=True)
        for index, title in enumerate(COLUMNS):
            factory = Gtk.SignalListItemFactory()
            factory.connect('setup', self.setup_cell, index)
            factory.connect('bind', self.bind_cell, index)
            factory.connect('unbind', self.unbind_cell)
            column = Gtk.ColumnViewColumn(title=title, factory=factory, expand=index == 5)
            view.append_column(column)
        scrolled = Gtk.ScrolledWindow(child=view, vexpand=True)

        text_view = Gtk.TextView(editable=False, monospace=True, wrap_mode=Gtk.WrapMode.WORD_CHAR)
        self.detail = text_view.get_buffer()
        paned = Gtk.Paned(orientation=Gtk.Orientation.VERTICAL, vexpand=True, position=470)
        paned.set_start_child(scrolled)
        paned.set_end_child(Gtk.ScrolledWindow(child=text_view))
        content.append(paned)
        self.window.set_child(content)

        self.show_detail()
        self.update_status()
        GLib.timeout_add(200, self.on_tick)
        self.window.present()

        if self.self_test_dir is not None:
            GLib.timeout_add_seconds(120, self.on_watchdog)
            self.start_batch()
            # The crash is the selected row: its report is in the pictures.
            self.selection.set_selected(1)

    def setup_cell(self, factory, item, column):
        if column == 3:
            child = Gtk.ProgressBar(valign=Gtk.Align.CENTER, width_request=120)
        elif column == 7:
            child = Gtk.Box(spacing=4)
            for action in ['Interrupt', 'Stop', 'Kill']:
                button = Gtk.Button(label=action)
                button.connect('clicked', self.on_action, action)
                child.append(button)
        else:
            child = Gtk.Label(xalign=0)
            if column == 5:
                child.set_ellipsize(3)  # Pango.EllipsizeMode.END
                child.set_width_chars(24)
        child.column = column
        item.set_child(child)

    def bind_cell(self, factory, item, column):
        job = item.get_item()
        self.fill_cell(item.get_child(), job)
        item.handler = job.connect('changed', lambda j: self.fill_cell(item.get_child(), j))

    def unbind_cell(self, factory, item):
        item.get_item().disconnect(item.handler)

    def fill_cell(self, child, job):
        process = job.process
        state = process.get_state()
        column = child.column
        if column == 0:
            child.set_markup('%s\n<small>%s</small>' % (GLib.markup_escape_text(job.label),
                                                      job.function))
        elif column == 1:
            child.set_text(str(process.get_pid()) if process.get_pid() else '–')
        elif column == 2:
            child.set_text(state_name(state))
        elif column == 3:
            child.set_fraction(1.0 if job.ok else process.get_progress())
        elif column == 4:
            child.set_text(job.elapsed())
        elif column == 5:
            child.set_text(job.message)
        elif column == 6:
            child.set_text(job.outcome)
        else:
            button = child.get_first_child()
            while button is not None:
                button.job = job
                button.set_sensitive(state != Arip.State.FINISHED)
                button = button.get_next_sibling()

    # --- the jobs ----------------------------------------------------------

    def start_batch(self):
        limit = self.limit.get_value_as_int()
        self.jobs.remove_all()
        Arip.set_max_processes(limit)
        self.pool = Arip.Pool.new(self.launcher, limit) if self.use_pool.get_active() else None
        for i in range(self.n_jobs.get_value_as_int()):
            start = 1000000 * (i + 1)
            end = start + 60000 + 10000 * i
            self.add_job('primes %d–%d k' % (start // 1000, end // 1000), self.count_primes,
                         start, end)
            if i == 0 and self.with_crash.get_active():
                self.add_job('crash', self.crash)
            if i == 2 and self.with_stuck.get_active():
                self.add_job('stuck', self.stuck)
        self.update_status()

    def add_job(self, label, function, *args):
        process = Arip.Process.for_function(function, *args, launcher=self.launcher,
                                            pool=self.pool)
        job = Job(label, function.__name__, args, process)
        process.connect('state-changed', self.on_state_changed, job)
        process.connect('message', self.on_message, job)
        process.connect('notify::progress', lambda *_: job.emit('changed'))
        job.connect('changed', self.on_job_changed)
        self.jobs.append(job)
        process.start_async(None, lambda p, result: self.on_started(p, result))
        process.wait_async(None, lambda p, result: self.on_waited(p, result, job))

    def on_started(self, process, result):
        try:
            process.start_finish(result)
        except GLib.Error:
            pass  # the outcome comes through wait either way

    def on_state_changed(self, process, old_state, new_state, job):
        if new_state == Arip.State.EXECUTING and job.started is None:
            job.started = time.monotonic()
        job.emit('changed')
        self.update_status()

    def on_message(self, process, message, job):
        job.message = message.unpack()
        job.emit('changed')

    def on_waited(self, process, result, job):
        job.ended = time.monotonic()
        job.started = job.started or job.ended
        try:
            process.wait_finish(result)
            job.outcome = '%d primes' % process.result
            job.ok = True
        except GLib.Error as error:
            job.outcome = Arip.Error(error.code).value_name if error.domain == 'arip-error-quark' \
                else error.domain
            job.detail = error.message
        except Exception as exc:
            job.outcome = type(exc).__name__
            job.detail = str(exc)
        job.emit('changed')
        self.update_status()
        self.show_detail()

    def on_action(self, button, action):
        job = getattr(button, 'job', None)
        if job is None or job.process.get_state() == Arip.State.FINISHED:
            return
        if action == 'Interrupt':
            job.process.interrupt()
        elif action == 'Stop':
            self.stop_job(job)
        else:
            job.process.kill()

    def stop_job(self, job):
        def stopped(process, result):
            try:
                process.stop_finish(result)
            except GLib.Error as error:
                print('stopping: %s' % error.message, file=sys.stderr)
        job.process.stop_async(None, stopped)

    # --- the header and the pane -------------------------------------------

    def update_status(self):
        waiting = running = finished = 0
        for job in self.jobs:
            state = job.process.get_state()
            if state == Arip.State.FINISHED:
                finished += 1
            elif state == Arip.State.INITIALIZING and not job.process.get_pid():
                waiting += 1
            else:
                running += 1
        text = ''
        if self.pool is not None:
            text = 'Pool: %d of %d workers · ' % (self.pool.get_n_workers(),
                                                  self.pool.get_max_workers())
        text += 'Limiter: %d of %d slots in use · %d waiting · %d running · %d finished' % (
            Arip.get_running_processes(), Arip.get_max_processes(), waiting, running, finished)
        self.status.set_text(text)

    def on_job_changed(self, job):
        # The pane follows the selected job as it goes.
        if self.selection.get_selected_item() is job:
            self.show_detail()
        self.self_test_step()

    def show_detail(self):
        job = self.selection.get_selected_item()
        if job is None:
            text = 'Select a job to see its details.'
        else:
            text = '%s — %s (pid %d), %s\n\n%s' % (
                job.label, job.function, job.process.get_pid(),
                state_name(job.process.get_state()),
                job.detail or job.outcome or 'Still running.')
        # Only when it changed: setting it again would scroll the pane back.
        if self.detail.get_text(*self.detail.get_bounds(), False) != text:
            self.detail.set_text(text, -1)

    def on_tick(self):
        for job in self.jobs:
            if job.started is not None and job.ended is None:
                job.emit('changed')
        self.update_status()
        return GLib.SOURCE_CONTINUE

    # --- the test hook -----------------------------------------------------

    def screenshot(self, name):
        """Saves the window as GTK draws it, as a PNG in the self-test's
        directory. PyGObject 3.42 cannot hand GTK's render nodes to Python,
        so the few calls that pass one go through ctypes."""
        width, height = self.window.get_width(), self.window.get_height()
        if width <= 0 or height <= 0:
            return False
        path = GLib.build_filenamev([self.self_test_dir, name])
        if not _save_window_png(self.window, width, height, path):
            return False
        print('screenshot', path, flush=True)
        return True

    def self_test_step(self):
        if self.self_test_dir is None or self.done or len(self.jobs) == 0:
            return
        states = [job.process.get_state() for job in self.jobs]
        finished = states.count(Arip.State.FINISHED)
        others = [job for job in self.jobs
                  if job.function != 'stuck' and job.process.get_state() != Arip.State.FINISHED]
        stuck_jobs = [job for job in self.jobs
                      if job.function == 'stuck' and job.process.get_state() != Arip.State.FINISHED]
        in_progress = [job for job in self.jobs
                       if job.process.get_state() == Arip.State.EXECUTING and
                       0.2 < job.process.get_progress() < 0.8]
        if not self.shot_running_due and in_progress and finished:
            # A little later: the rows draw what just changed first.
            self.shot_running_due = True
            GLib.timeout_add(300, self.take_running_screenshot)
        if not others and stuck_jobs and not self.stopped_stuck:
            self.stopped_stuck = True
            self.stop_job(stuck_jobs[0])
        if finished == len(self.jobs):
            self.done = True
            GLib.timeout_add(300, self.self_test_finish)

    def take_screenshot(self, name, done):
        """Saves the picture right after GTK painted the window: its layout
        is done then, and a GtkWidgetPaintable made at that moment draws it
        whole (made while a relayout is pending, it draws nothing). Calls
        done(saved)."""
        clock = self.window.get_frame_clock()
        tries = [0]

        def after_paint(clock):
            saved = self.screenshot(name)
            tries[0] += 1
            if not saved and tries[0] < 10:
                self.window.queue_draw()
                return
            clock.disconnect(self.shot_handler)
            self.shot_handler = None
            done(saved)

        self.shot_handler = clock.connect('after-paint', after_paint)
        self.window.queue_draw()

    def take_running_screenshot(self):
        def done(saved):
            self.shot_running = saved
        self.take_screenshot('monitor-running.png', done)
        return GLib.SOURCE_REMOVE

    def rows_ok(self):
        for job in self.jobs:
            process = job.process
            sig = process.get_term_sig() if process.get_if_signaled() else 0
            if process.get_state() != Arip.State.FINISHED:
                return False
            if job.function == 'count_primes' and not job.ok:
                return False
            if job.function == 'crash' and sig != signal.SIGSEGV:
                return False
            if job.function == 'stuck' and sig != signal.SIGTERM:
                return False
        return True

    def self_test_finish(self):
        if self.shot_handler is not None:
            # The first picture is still being taken.
            GLib.timeout_add(100, self.self_test_finish)
            return GLib.SOURCE_REMOVE
        for job in self.jobs:
            process = job.process
            sig = signal.Signals(process.get_term_sig()).name \
                if process.get_if_signaled() else '-'
            span = '%d-%d' % job.args if job.function == 'count_primes' else '-'
            print('row\t%s\t%s\t%s\t%s\t%s\t%s' % (job.label, job.function, span,
                                                  state_name(process.get_state()), sig,
                                                  job.outcome or '-'), flush=True)
        if not self.rows_ok():
            print('arip-monitor.py: a row is not what it should be', file=sys.stderr)
            self.status_code = 1

        def done(saved):
            if not saved or not self.shot_running:
                print('arip-monitor.py: a screenshot is missing', file=sys.stderr)
                self.status_code = 1
            self.quit()
        self.take_screenshot('monitor-finished.png', done)
        return GLib.SOURCE_REMOVE

    def on_watchdog(self):
        print('arip-monitor.py: the self-test did not end within 120 s', file=sys.stderr)
        self.status_code = 1
        self.quit()
        return GLib.SOURCE_REMOVE


def _save_window_png(window, width, height, path):
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype = ctypes.c_void_p
    pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    gtk = ctypes.CDLL('libgtk-4.so.1')
    for name in ['gtk_widget_paintable_new', 'gtk_snapshot_new', 'gtk_snapshot_free_to_node',
                 'gtk_native_get_renderer', 'gsk_renderer_render_texture']:
        getattr(gtk, name).restype = ctypes.c_void_p
    for name in ['gtk_widget_paintable_new', 'gtk_native_get_renderer']:
        getattr(gtk, name).argtypes = [ctypes.c_void_p]
    gtk.gtk_snapshot_free_to_node.argtypes = [ctypes.c_void_p]
    gtk.gdk_paintable_snapshot.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                           ctypes.c_double, ctypes.c_double]
    gtk.gsk_renderer_render_texture.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                                ctypes.c_void_p]
    gtk.gdk_texture_save_to_png.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    gtk.gsk_render_node_unref.argtypes = [ctypes.c_void_p]
    gtk.g_object_unref.argtypes = [ctypes.c_void_p]

    widget = pointer(window.__gpointer__, None)
    renderer = gtk.gtk_native_get_renderer(widget)
    if not renderer:
        return False
    paintable = gtk.gtk_widget_paintable_new(widget)
    snapshot = gtk.gtk_snapshot_new()
    gtk.gdk_paintable_snapshot(paintable, snapshot, width, height)
    node = gtk.gtk_snapshot_free_to_node(snapshot)
    gtk.g_object_unref(paintable)
    if not node:
        return False
    rect = (ctypes.c_float * 4)(0, 0, width, height)
    texture = gtk.gsk_renderer_render_texture(renderer, node, ctypes.byref(rect))
    gtk.gsk_render_node_unref(node)
    saved = bool(gtk.gdk_texture_save_to_png(texture, path.encode()))
    gtk.g_object_unref(texture)
    return saved


def main(count_primes, crash, stuck):
    parser = argparse.ArgumentParser(description="Watch arip's workers in a GTK 4 window.")
    parser.add_argument('--self-test', metavar='DIR',
                        help='run a batch, check it, save screenshots in DIR, and quit')
    parser.add_argument('--pool', action='store_true', help='with --self-test: on a pool')
    options = parser.parse_args()
    if options.self_test:
        GLib.mkdir_with_parents(options.self_test, 0o755)
    app = Monitor(options.self_test, options.pool, (count_primes, crash, stuck))
    status = app.run([sys.argv[0]])
    return status or app.status_code
