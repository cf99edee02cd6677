# shellcheck shell=bash
# Facts about the machine the user runs a script on, the same way on macOS (bash 3.2, BSD
# tools) and Linux: no /proc, no GNU-only flags, and a fallback for every tool macOS lacks.
# Sourced, not executed. scripts/test/ runs the scripts under bash 3.2 with BSD stand-ins.

os_name() { uname -s; }

# Windows Subsystem for Linux: Minikube's docker driver tunnels through SSH there, as on macOS.
is_wsl() { [[ $(uname -s) == Linux && $(uname -r) == *[Mm]icrosoft* ]]; }

# Online CPUs: sysctl on macOS (no nproc there), getconf elsewhere.
host_cpus() {
  if [[ $(os_name) == Darwin ]]; then
    sysctl -n hw.ncpu
  else
    getconf _NPROCESSORS_ONLN 2>/dev/null || nproc # portable: Linux branch, where nproc exists
  fi
}

# Physical memory in MiB.
host_memory_mib() {
  local bytes
  if [[ $(os_name) == Darwin ]]; then
    bytes=$(sysctl -n hw.memsize)
  else
    bytes=$(($(getconf _PHYS_PAGES) * $(getconf PAGE_SIZE)))
  fi
  echo $((bytes / 1048576))
}

# "1.05 0.98 0.77": uptime prints "load average: a, b, c" on Linux and
# "load averages: a b c" on macOS.
load_average() {
  local line
  line=$(uptime 2>/dev/null | sed -n 's/.*load averages*: *//p' | tr -d ',')
  printf '%s\n' "${line:-unknown}"
}

# The CPU's name for a results file; the architecture where nothing better is known.
cpu_model() {
  local model=""
  if [[ $(os_name) == Darwin ]]; then
    model=$(sysctl -n machdep.cpu.brand_string 2>/dev/null || true)
  elif command -v lscpu >/dev/null 2>&1; then
    model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)
  fi
  printf '%s\n' "${model:-$(uname -m)}"
}

# Seconds since the epoch with a fraction where the platform gives one: bash 5's
# EPOCHREALTIME, GNU date's %N (BSD date prints a literal N), perl (on every Mac), else
# whole seconds.
epoch_now() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    printf '%s\n' "${EPOCHREALTIME/,/.}"
    return
  fi
  local now
  now=$(date +%s.%N) # portable: checked below; BSD date prints a literal N
  if [[ $now =~ ^[0-9]+\.[0-9]+$ ]]; then
    printf '%s\n' "$now"
  elif command -v perl >/dev/null 2>&1; then
    perl -MTime::HiRes=time -e 'printf "%.6f\n", time'
  else
    date +%s
  fi
}

# How to install a missing tool, for error messages.
install_hint() {
  if [[ $(os_name) == Darwin ]]; then
    printf 'brew install %s' "$*"
  else
    printf 'sudo apt-get install -y %s (or your distribution'\''s package)' "$*"
  fi
}
