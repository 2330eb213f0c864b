/* arip-fork.c: forking a process that may embed an interpreter
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The fork server and ARIP_START_METHOD_FORK fork without exec, so the
 * child is a copy of whatever runs in the process, an interpreter
 * included. CPython keeps locks and per-thread states that must be reset
 * in the child (os.fork() does it through PyOS_AfterFork_Child()); we
 * call the same hooks when they are there, found at run time so that
 * the library does not link against Python.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <dlfcn.h>
#include <unistd.h>

#include "arip-fork-private.h"

guint
arip_fork_count_threads (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return MAX (n, 1);
}

/* The hooks need the GIL, which the binding released around the call
 * that got us here. */
typedef struct {
  int   (*is_initialized) (void);
  int   (*gil_ensure) (void);
  void  (*gil_release) (int);
  void  (*before) (void);
  void  (*after_parent) (void);
  void  (*after_child) (void);
  int     state;
  gboolean active;
} PythonFork;

static void
python_before_fork (PythonFork *py)
{
  py->is_initialized = (int (*) (void)) dlsym (RTLD_DEFAULT, "Py_IsInitialized");
  py->gil_ensure = (int (*) (void)) dlsym (RTLD_DEFAULT, "PyGILState_Ensure");
  py->gil_release = (void (*) (int)) dlsym (RTLD_DEFAULT, "PyGILState_Release");
  py->before = (void (*) (void)) dlsym (RTLD_DEFAULT, "PyOS_BeforeFork");
  py->after_parent = (void (*) (void)) dlsym (RTLD_DEFAULT, "PyOS_AfterFork_Parent");
  py->after_child = (void (*) (void)) dlsym (RTLD_DEFAULT, "PyOS_AfterFork_Child");
  py->active = py->is_initialized != NULL && py->gil_ensure != NULL && py->gil_release != NULL &&
               py->before != NULL && py->after_parent != NULL && py->after_child != NULL &&
               py->is_initialized ();
  if (!py->active)
    return;
  py->state = py->gil_ensure ();
  py->before ();
}

static void
python_after_fork (PythonFork *py,
                   gboolean    in_child)
{
  if (!py->active)
    return;
  if (in_child)
    py->after_child ();
  else
    py->after_parent ();
  py->gil_release (py->state);
}

GPid
arip_fork (void)
{
  PythonFork py = { 0 };
  GPid pid;

  python_before_fork (&py);
  pid = fork ();
  python_after_fork (&py, pid == 0);
  return pid;
}
