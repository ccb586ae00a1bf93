// SPDX-License-Identifier: GPL-2.0-only
// node-addon-api binding over libbpf: objects, pins, XDP/tc attach, maps,
// test runs, network namespaces, and the map ABI layout computed by the C
// compiler from bpf/include/ipvs_bpf_abi.h.  All calls are synchronous; errors
// become JS Errors with .errno (positive) and .code (e.g. "ENOENT").
#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "ipvs_bpf_abi.h"
#include "ipvs_bpf_cfg.h"
}

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace {

// ---- errors --------------------------------------------------------------

const char *ErrnoName(int e) {
  switch (e) {
#define N(x) \
  case x:    \
    return #x;
    N(EPERM) N(ENOENT) N(EINTR) N(EIO) N(E2BIG) N(EBADF) N(EAGAIN) N(ENOMEM) N(EACCES) N(EFAULT)
    N(EBUSY) N(EEXIST) N(ENODEV) N(ENOTDIR) N(EINVAL) N(ENOSPC) N(ERANGE) N(EOPNOTSUPP) N(ENXIO)
    N(ELOOP) N(ENAMETOOLONG)
#undef N
    case 524:
      return "ENOTSUPP";
    default:
      return "EUNKNOWN";
  }
}

[[noreturn]] void Throw(Napi::Env env, int err, const std::string &what, const std::string &extra = "") {
  if (err < 0) err = -err;
  std::string msg = what + ": " + (err == 524 ? "Operation not supported (ENOTSUPP)" : strerror(err));
  if (!extra.empty()) msg += "\n" + extra;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  throw e;
}

// libbpf messages are captured while an object loads, to put the verifier log in the error.
std::string g_libbpf_log;
bool g_capture = false;
int LibbpfPrint(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (!g_capture || level == LIBBPF_DEBUG) return 0;
  char buf[4096];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  if (g_libbpf_log.size() < (1u << 20)) g_libbpf_log += buf;
  return 0;
}

std::string Str(const Napi::Value &v) { return v.As<Napi::String>().Utf8Value(); }
uint32_t U32(const Napi::Value &v) { return v.As<Napi::Number>().Uint32Value(); }
int32_t I32(const Napi::Value &v) { return v.As<Napi::Number>().Int32Value(); }

// ---- layout ----------------------------------------------------------------

Napi::Object Field(Napi::Env env, size_t off, size_t size) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("offset", Napi::Number::New(env, off));
  o.Set("size", Napi::Number::New(env, size));
  return o;
}

Napi::Value Layout(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  r.Set("abiVersion", IPVS_BPF_ABI_VERSION);

  Napi::Object key = Napi::Object::New(env), kf = Napi::Object::New(env);
#define KF(s, f) kf.Set(#f, Field(env, offsetof(struct s, f), sizeof(((struct s *)0)->f)));
  IPVS_BPF_CT_KEY_FIELDS(KF)
#undef KF
  key.Set("size", Napi::Number::New(env, sizeof(struct ipvs_bpf_ct_key)));
  key.Set("fields", kf);
  r.Set("key", key);

  Napi::Object val = Napi::Object::New(env), vf = Napi::Object::New(env);
#define VF(s, f) vf.Set(#f, Field(env, offsetof(struct s, f), sizeof(((struct s *)0)->f)));
  IPVS_BPF_CT_VALUE_FIELDS(VF)
#undef VF
  val.Set("size", Napi::Number::New(env, sizeof(struct ipvs_bpf_ct_value)));
  val.Set("fields", vf);
  r.Set("value", val);

  Napi::Array stats = Napi::Array::New(env);
  uint32_t i = 0;
#define SN(name) stats.Set(i++, Napi::String::New(env, #name));
  IPVS_BPF_STATS(SN)
#undef SN
  r.Set("stats", stats);

  Napi::Object kinds = Napi::Object::New(env);
  kinds.Set("SNAT", (int)IPVS_BPF_KIND_SNAT);
  kinds.Set("REPLY", (int)IPVS_BPF_KIND_REPLY);
  kinds.Set("FWD", (int)IPVS_BPF_KIND_FWD);
  r.Set("kinds", kinds);
  Napi::Object flags = Napi::Object::New(env);
  flags.Set("NO_FASTPATH", IPVS_BPF_F_NO_FASTPATH);
  r.Set("flags", flags);
  Napi::Object af = Napi::Object::New(env);
  af.Set("INET", IPVS_BPF_AF_INET);
  af.Set("INET6", IPVS_BPF_AF_INET6);
  r.Set("af", af);

  Napi::Object pin = Napi::Object::New(env);
  pin.Set("dir", IPVS_BPF_PIN_DIR);
  pin.Set("ctMap", IPVS_BPF_CT_MAP_NAME);
  pin.Set("statsMap", IPVS_BPF_STATS_MAP_NAME);
  pin.Set("devMap", IPVS_BPF_DEV_MAP_NAME);
  pin.Set("xdp", IPVS_BPF_PIN_XDP);
  pin.Set("tcEgress", IPVS_BPF_PIN_TC_EGRESS);
  pin.Set("tcIngress", IPVS_BPF_PIN_TC_INGRESS);
  pin.Set("xdpPass", IPVS_BPF_PIN_XDP_PASS);
  r.Set("pin", pin);

  Napi::Object cfg = Napi::Object::New(env);
  cfg.Set("section", IPVS_BPF_CFG_SECTION);
  cfg.Set("DEC_TTL", IPVS_BPF_CFG_DEC_TTL);
  cfg.Set("default", IPVS_BPF_CFG_DEFAULT);
  r.Set("cfg", cfg);
  r.Set("defaultEntries", IPVS_BPF_CT_DEFAULT_ENTRIES);
  r.Set("statsSlots", IPVS_BPF_STATS_SLOTS);
  r.Set("devMapEntries", IPVS_BPF_DEV_MAP_ENTRIES);
  return r;
}

// ---- objects -------------------------------------------------------------

struct Obj {
  struct bpf_object *obj;
};
std::map<uint32_t, Obj> g_objs;
uint32_t g_next_obj = 1;

// Before load: every map the object pins by name whose pin exists is reused (bpf_map__reuse_fd), after
// checking that the pinned map is the one the object defines. A difference is an ABI change: the error
// names the map and each differing property (err.map, err.differences) and nothing is loaded.
void ReusePinnedMaps(Napi::Env env, struct bpf_object *obj, const std::string &path) {
  struct bpf_map *m;
  bpf_object__for_each_map(m, obj) {
    if (!bpf_map__pin_path(m)) continue;
    const std::string pin = bpf_map__pin_path(m), name = bpf_map__name(m);  // obj may be closed below
    int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) {
      if (errno == ENOENT) continue;  // first load: libbpf creates and pins it
      int e = errno;
      bpf_object__close(obj);
      Throw(env, e, "open pinned map " + pin);
    }
    struct bpf_map_info mi;
    __u32 len = sizeof(mi);
    memset(&mi, 0, sizeof(mi));
    if (bpf_obj_get_info_by_fd(fd, &mi, &len)) {
      int e = errno;
      close(fd);
      bpf_object__close(obj);
      Throw(env, e, "map info of pinned " + pin);
    }
    std::vector<std::string> diff;
    auto cmp = [&diff](const char *what, unsigned long pinned, unsigned long wanted) {
      if (pinned != wanted)
        diff.push_back(std::string(what) + " " + std::to_string(pinned) + " pinned, " + std::to_string(wanted) + " in the object");
    };
    cmp("type", mi.type, bpf_map__type(m));
    cmp("key size", mi.key_size, bpf_map__key_size(m));
    cmp("value size", mi.value_size, bpf_map__value_size(m));
    cmp("max entries", mi.max_entries, bpf_map__max_entries(m));
    // the kernel marks device maps read-only for programs itself (their values are device references)
    __u32 flags = mi.map_flags;
    if (mi.type == BPF_MAP_TYPE_DEVMAP || mi.type == BPF_MAP_TYPE_DEVMAP_HASH) flags &= ~BPF_F_RDONLY_PROG;
    cmp("flags", flags, bpf_map__map_flags(m));
    int err = diff.empty() ? bpf_map__reuse_fd(m, fd) : 0;
    close(fd);  // reuse_fd keeps its own duplicate
    if (!diff.empty() || err) {
      bpf_object__close(obj);
      if (err) Throw(env, err, "reuse pinned map " + name);
      std::string msg = "pinned map " + name + " (" + pin + ") differs from its definition in " + path + ": ";
      for (size_t i = 0; i < diff.size(); i++) msg += (i ? ", " : "") + diff[i];
      Napi::Error e = Napi::Error::New(env, msg);
      e.Set("errno", Napi::Number::New(env, EINVAL));
      e.Set("code", Napi::String::New(env, "EINVAL"));
      e.Set("map", Napi::String::New(env, name));
      Napi::Array d = Napi::Array::New(env, diff.size());
      for (size_t i = 0; i < diff.size(); i++) d.Set(i, Napi::String::New(env, diff[i]));
      e.Set("differences", d);
      throw e;
    }
  }
}

// loadObject(path, { pinRoot?, maxEntries?: {map: n}, rodata?: {section: Buffer}, programs?: [names to load] })
// Maps pinned by name under pinRoot (libbpf's default: /sys/fs/bpf) are reused when their pin exists
// (ReusePinnedMaps), else created and pinned.
Napi::Value LoadObject(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = Str(info[0]);
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  std::string pinRoot;
  if (o.Has("pinRoot") && o.Get("pinRoot").IsString()) pinRoot = Str(o.Get("pinRoot"));

  LIBBPF_OPTS(bpf_object_open_opts, oo);
  if (!pinRoot.empty()) oo.pin_root_path = pinRoot.c_str();
  g_libbpf_log.clear();
  g_capture = true;
  struct bpf_object *obj = bpf_object__open_file(path.c_str(), &oo);
  if (!obj) {
    int err = errno;
    g_capture = false;
    Throw(env, err, "open BPF object " + path, g_libbpf_log);
  }
  struct bpf_map *m;
  if (o.Has("maxEntries") && o.Get("maxEntries").IsObject()) {
    Napi::Object me = o.Get("maxEntries").As<Napi::Object>();
    bpf_object__for_each_map(m, obj) {
      if (me.Has(bpf_map__name(m))) bpf_map__set_max_entries(m, U32(me.Get(bpf_map__name(m))));
    }
  }
  if (o.Has("rodata") && o.Get("rodata").IsObject()) {
    Napi::Object rd = o.Get("rodata").As<Napi::Object>();
    Napi::Array names = rd.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string sec = Str(names.Get(i));
      Napi::Buffer<uint8_t> b = rd.Get(sec).As<Napi::Buffer<uint8_t>>();
      bool found = false;
      bpf_object__for_each_map(m, obj) {
        std::string n = bpf_map__name(m);
        if (bpf_map__is_internal(m) && n.size() >= sec.size() && n.compare(n.size() - sec.size(), sec.size(), sec) == 0) {
          size_t sz = 0;
          bpf_map__initial_value(m, &sz);
          if (sz != b.Length()) {
            g_capture = false;
            bpf_object__close(obj);
            Throw(env, EINVAL, "rodata " + sec + " is " + std::to_string(sz) + " bytes, got " + std::to_string(b.Length()));
          }
          int err = bpf_map__set_initial_value(m, b.Data(), b.Length());
          if (err) {
            g_capture = false;
            bpf_object__close(obj);
            Throw(env, err, "set " + sec);
          }
          found = true;
        }
      }
      if (!found) {
        g_capture = false;
        bpf_object__close(obj);
        Throw(env, ENOENT, "no section " + sec + " in " + path);
      }
    }
  }
  if (o.Has("programs") && o.Get("programs").IsArray()) {
    Napi::Array want = o.Get("programs").As<Napi::Array>();
    struct bpf_program *p;
    bpf_object__for_each_program(p, obj) {
      bool keep = false;
      for (uint32_t i = 0; i < want.Length(); i++)
        if (Str(want.Get(i)) == bpf_program__name(p)) keep = true;
      bpf_program__set_autoload(p, keep);
    }
  }
  g_capture = false;
  ReusePinnedMaps(env, obj, path);  // closes obj when it throws
  g_capture = true;
  int err = bpf_object__load(obj);
  g_capture = false;
  if (err) {
    std::string log = g_libbpf_log;
    if (log.size() > 16000) log = "...\n" + log.substr(log.size() - 16000);
    bpf_object__close(obj);
    Throw(env, err, "load BPF object " + path, log);
  }
  uint32_t id = g_next_obj++;
  g_objs[id] = Obj{obj};

  Napi::Object r = Napi::Object::New(env);
  r.Set("id", id);
  Napi::Object progs = Napi::Object::New(env), maps = Napi::Object::New(env);
  struct bpf_program *p;
  bpf_object__for_each_program(p, obj) {
    if (bpf_program__fd(p) >= 0) progs.Set(bpf_program__name(p), bpf_program__fd(p));
  }
  bpf_object__for_each_map(m, obj) {
    if (bpf_map__fd(m) >= 0) maps.Set(bpf_map__name(m), bpf_map__fd(m));
  }
  r.Set("programs", progs);
  r.Set("maps", maps);
  return r;
}

Napi::Value CloseObject(const Napi::CallbackInfo &info) {
  auto it = g_objs.find(U32(info[0]));
  if (it != g_objs.end()) {
    bpf_object__close(it->second.obj);
    g_objs.erase(it);
  }
  return info.Env().Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  close(I32(info[0]));
  return info.Env().Undefined();
}

// ---- pins / bpffs ----------------------------------------------------------

Napi::Value EnsureBpffs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string dir = Str(info[0]);  // e.g. /sys/fs/bpf/ipvs-bpf
  std::string root = dir.substr(0, dir.rfind('/'));
  struct statfs st;
  if (statfs(root.c_str(), &st) || st.f_type != BPF_FS_MAGIC) {
    mkdir(root.c_str(), 0700);
    if (mount("bpf", root.c_str(), "bpf", 0, "mode=0700")) Throw(env, errno, "mount bpffs on " + root);
  }
  if (mkdir(dir.c_str(), 0700) && errno != EEXIST) Throw(env, errno, "mkdir " + dir);
  return env.Undefined();
}

Napi::Value ObjPin(const Napi::CallbackInfo &info) {
  std::string path = Str(info[1]);
  if (bpf_obj_pin(I32(info[0]), path.c_str())) Throw(info.Env(), errno, "pin " + path);
  return info.Env().Undefined();
}

// objGet(path) -> fd, or null when the pin does not exist
Napi::Value ObjGet(const Napi::CallbackInfo &info) {
  std::string path = Str(info[0]);
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    if (errno == ENOENT) return info.Env().Null();
    Throw(info.Env(), errno, "open pinned " + path);
  }
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Unpin(const Napi::CallbackInfo &info) {
  std::string path = Str(info[0]);
  if (unlink(path.c_str()) && errno != ENOENT) Throw(info.Env(), errno, "unpin " + path);
  return info.Env().Undefined();
}

Napi::Value ProgInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct bpf_prog_info pi;
  __u32 len = sizeof(pi);
  memset(&pi, 0, sizeof(pi));
  if (bpf_obj_get_info_by_fd(I32(info[0]), &pi, &len)) Throw(env, errno, "prog info");
  Napi::Object r = Napi::Object::New(env);
  r.Set("id", pi.id);
  r.Set("name", pi.name);
  r.Set("type", pi.type);
  char tag[17];
  for (int i = 0; i < 8; i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  r.Set("tag", tag);
  // the maps the program uses (a second call with room for their ids)
  std::vector<__u32> ids(pi.nr_map_ids);
  if (pi.nr_map_ids) {
    struct bpf_prog_info p2;
    memset(&p2, 0, sizeof(p2));
    p2.nr_map_ids = ids.size();
    p2.map_ids = (__u64)(unsigned long)ids.data();
    len = sizeof(p2);
    if (bpf_obj_get_info_by_fd(I32(info[0]), &p2, &len)) Throw(env, errno, "prog info (map ids)");
    ids.resize(std::min<size_t>(ids.size(), p2.nr_map_ids));
  }
  Napi::Array mapIds = Napi::Array::New(env, ids.size());
  for (size_t i = 0; i < ids.size(); i++) mapIds.Set(i, Napi::Number::New(env, ids[i]));
  r.Set("mapIds", mapIds);
  return r;
}

Napi::Value MapInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct bpf_map_info mi;
  __u32 len = sizeof(mi);
  memset(&mi, 0, sizeof(mi));
  if (bpf_obj_get_info_by_fd(I32(info[0]), &mi, &len)) Throw(env, errno, "map info");
  Napi::Object r = Napi::Object::New(env);
  r.Set("id", mi.id);
  r.Set("name", mi.name);
  r.Set("type", mi.type);
  r.Set("keySize", mi.key_size);
  r.Set("valueSize", mi.value_size);
  r.Set("maxEntries", mi.max_entries);
  r.Set("flags", mi.map_flags);
  return r;
}

Napi::Value ProgGetFdById(const Napi::CallbackInfo &info) {
  int fd = bpf_prog_get_fd_by_id(U32(info[0]));
  if (fd < 0) Throw(info.Env(), errno, "prog fd by id");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value MapGetFdById(const Napi::CallbackInfo &info) {
  int fd = bpf_map_get_fd_by_id(U32(info[0]));
  if (fd < 0) Throw(info.Env(), errno, "map fd by id");
  return Napi::Number::New(info.Env(), fd);
}

// ---- interfaces, netns -------------------------------------------------------

Napi::Value IfIndex(const Napi::CallbackInfo &info) {
  std::string name = Str(info[0]);
  unsigned idx = if_nametoindex(name.c_str());
  if (!idx) Throw(info.Env(), errno, "interface " + name);
  return Napi::Number::New(info.Env(), idx);
}

// netnsEnter(path) -> fd of the previous netns of this (main) thread
Napi::Value NetnsEnter(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = Str(info[0]);
  int prev = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (prev < 0) Throw(env, errno, "open current netns");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    close(prev);
    Throw(env, e, "open netns " + path);
  }
  if (setns(fd, CLONE_NEWNET)) {
    int e = errno;
    close(fd);
    close(prev);
    Throw(env, e, "setns " + path);
  }
  close(fd);
  return Napi::Number::New(env, prev);
}

Napi::Value NetnsRestore(const Napi::CallbackInfo &info) {
  int fd = I32(info[0]);
  int rc = setns(fd, CLONE_NEWNET);
  int e = errno;
  close(fd);
  if (rc) Throw(info.Env(), e, "restore netns");
  return info.Env().Undefined();
}

// ---- XDP -----------------------------------------------------------------

__u32 XdpModeFlag(const std::string &mode) {
  if (mode == "native") return XDP_FLAGS_DRV_MODE;
  if (mode == "generic") return XDP_FLAGS_SKB_MODE;
  return 0;
}

// xdpAttach(ifindex, fd, mode: 'native'|'generic'|'auto') -> mode used
Napi::Value XdpAttach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int ifindex = I32(info[0]), fd = I32(info[1]);
  std::string mode = Str(info[2]);
  if (mode == "auto") {
    if (bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, nullptr) == 0) return Napi::String::New(env, "native");
    int e = errno;
    if (bpf_xdp_attach(ifindex, fd, XDP_FLAGS_SKB_MODE, nullptr) == 0) return Napi::String::New(env, "generic");
    Throw(env, e, "attach XDP to ifindex " + std::to_string(ifindex));
  }
  if (bpf_xdp_attach(ifindex, fd, XdpModeFlag(mode), nullptr))
    Throw(env, errno, "attach XDP (" + mode + ") to ifindex " + std::to_string(ifindex));
  return Napi::String::New(env, mode);
}

// xdpReplace(ifindex, fd, oldFd, mode: 'native'|'generic'): swaps the attached program atomically, and only
// if it still is oldFd's program (XDP_FLAGS_REPLACE; EEXIST when another one is attached by now).
Napi::Value XdpReplace(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int ifindex = I32(info[0]), fd = I32(info[1]);
  std::string mode = Str(info[3]);
  LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = I32(info[2]));
  if (bpf_xdp_attach(ifindex, fd, XdpModeFlag(mode) | XDP_FLAGS_REPLACE, &o))
    Throw(env, errno, "replace XDP (" + mode + ") on ifindex " + std::to_string(ifindex));
  return env.Undefined();
}

Napi::Value XdpDetach(const Napi::CallbackInfo &info) {
  int ifindex = I32(info[0]);
  std::string mode = Str(info[1]);
  if (bpf_xdp_detach(ifindex, XdpModeFlag(mode), nullptr) && errno != ENOENT)
    Throw(info.Env(), errno, "detach XDP from ifindex " + std::to_string(ifindex));
  return info.Env().Undefined();
}

// xdpQuery(ifindex) -> { progId, mode: 'none'|'native'|'generic'|'hw'|'multi' }
Napi::Value XdpQuery(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(I32(info[0]), 0, &q)) Throw(env, errno, "query XDP");
  Napi::Object r = Napi::Object::New(env);
  const char *m = "none";
  __u32 id = q.prog_id;
  switch (q.attach_mode) {
    case XDP_ATTACHED_DRV: m = "native"; id = q.drv_prog_id; break;
    case XDP_ATTACHED_SKB: m = "generic"; id = q.skb_prog_id; break;
    case XDP_ATTACHED_HW: m = "hw"; id = q.hw_prog_id; break;
    case XDP_ATTACHED_MULTI: m = "multi"; break;
  }
  r.Set("progId", id);
  r.Set("mode", m);
  return r;
}

// ---- tc ------------------------------------------------------------------

struct bpf_tc_hook TcHook(int ifindex, const std::string &dir) {
  LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex,
              .attach_point = dir == "ingress" ? BPF_TC_INGRESS : BPF_TC_EGRESS);
  return h;
}

// tcAttach(ifindex, dir, fd, handle, priority): creates clsact if needed, replaces in place
Napi::Value TcAttach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int ifindex = I32(info[0]);
  std::string dir = Str(info[1]);
  struct bpf_tc_hook h = TcHook(ifindex, dir);
  int err = bpf_tc_hook_create(&h);
  if (err && err != -EEXIST) Throw(env, err, "create clsact on ifindex " + std::to_string(ifindex));
  LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = I32(info[2]), .flags = BPF_TC_F_REPLACE, .handle = U32(info[3]),
              .priority = U32(info[4]));
  err = bpf_tc_attach(&h, &o);
  if (err) Throw(env, err, "attach tc " + dir + " on ifindex " + std::to_string(ifindex));
  return Napi::Number::New(env, o.prog_id);
}

Napi::Value TcDetach(const Napi::CallbackInfo &info) {
  int ifindex = I32(info[0]);
  std::string dir = Str(info[1]);
  struct bpf_tc_hook h = TcHook(ifindex, dir);
  LIBBPF_OPTS(bpf_tc_opts, o, .handle = U32(info[2]), .priority = U32(info[3]));
  int err = bpf_tc_detach(&h, &o);
  if (err && err != -ENOENT && err != -EINVAL) Throw(info.Env(), err, "detach tc " + dir);
  return info.Env().Undefined();
}

// tcQuery(ifindex, dir, handle, priority) -> prog id or 0
Napi::Value TcQuery(const Napi::CallbackInfo &info) {
  int ifindex = I32(info[0]);
  std::string dir = Str(info[1]);
  struct bpf_tc_hook h = TcHook(ifindex, dir);
  LIBBPF_OPTS(bpf_tc_opts, o, .handle = U32(info[2]), .priority = U32(info[3]));
  int err = bpf_tc_query(&h, &o);
  if (err) {
    if (err == -ENOENT || err == -EINVAL) return Napi::Number::New(info.Env(), 0);
    Throw(info.Env(), err, "query tc " + dir);
  }
  return Napi::Number::New(info.Env(), o.prog_id);
}

// ---- maps ------------------------------------------------------------------

Napi::Value NumPossibleCpus(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

size_t ValueBytes(int fd, struct bpf_map_info *mi) {
  __u32 len = sizeof(*mi);
  memset(mi, 0, sizeof(*mi));
  if (bpf_obj_get_info_by_fd(fd, mi, &len)) return 0;
  bool percpu = mi->type == BPF_MAP_TYPE_PERCPU_HASH || mi->type == BPF_MAP_TYPE_PERCPU_ARRAY ||
                mi->type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  size_t vs = mi->value_size;
  if (percpu) vs = ((vs + 7) / 8) * 8 * libbpf_num_possible_cpus();
  return vs;
}

// mapLookup(fd, key) -> Buffer | null (per-CPU maps: one 8-aligned slot per possible CPU)
Napi::Value MapLookup(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  struct bpf_map_info mi;
  size_t vs = ValueBytes(fd, &mi);
  if (!vs) Throw(env, errno, "map info");
  if (key.Length() != mi.key_size) Throw(env, EINVAL, "key is " + std::to_string(key.Length()) + " bytes, map wants " + std::to_string(mi.key_size));
  auto out = Napi::Buffer<uint8_t>::New(env, vs);
  if (bpf_map_lookup_elem(fd, key.Data(), out.Data())) {
    if (errno == ENOENT) return env.Null();
    Throw(env, errno, "map lookup");
  }
  return out;
}

// mapUpdate(fd, key, value, flags: 0 any, 1 noexist, 2 exist)
Napi::Value MapUpdate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  auto val = info[2].As<Napi::Buffer<uint8_t>>();
  struct bpf_map_info mi;
  size_t vs = ValueBytes(fd, &mi);
  if (!vs) Throw(env, errno, "map info");
  if (key.Length() != mi.key_size || val.Length() != vs) Throw(env, EINVAL, "map update: key/value size mismatch");
  if (bpf_map_update_elem(fd, key.Data(), val.Data(), U32(info[3]))) Throw(env, errno, "map update");
  return env.Undefined();
}

// mapDelete(fd, key) -> true if deleted, false if absent
Napi::Value MapDelete(const Napi::CallbackInfo &info) {
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  if (bpf_map_delete_elem(I32(info[0]), key.Data())) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    Throw(info.Env(), errno, "map delete");
  }
  return Napi::Boolean::New(info.Env(), true);
}

// mapDump(fd) -> { count, keys: Buffer, values: Buffer, batched: boolean }
Napi::Value MapDump(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  struct bpf_map_info mi;
  size_t vs = ValueBytes(fd, &mi);
  if (!vs) Throw(env, errno, "map info");
  size_t ks = mi.key_size;
  std::vector<uint8_t> keys, vals;
  size_t count = 0;
  bool batched = false;
  bool isHash = mi.type == BPF_MAP_TYPE_HASH || mi.type == BPF_MAP_TYPE_PERCPU_HASH ||
                mi.type == BPF_MAP_TYPE_LRU_HASH || mi.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  if (isHash) {
    const __u32 chunk = 4096;
    std::vector<uint8_t> kb(ks * chunk), vb(vs * chunk);
    std::vector<uint8_t> in(ks), out(ks);  // batch tokens are key-sized for hash maps
    bool first = true;
    int err = 0;
    for (;;) {
      __u32 n = chunk;
      LIBBPF_OPTS(bpf_map_batch_opts, bo);
      err = bpf_map_lookup_batch(fd, first ? nullptr : in.data(), out.data(), kb.data(), vb.data(), &n, &bo);
      int e = errno;
      if (err && e != ENOENT) {
        err = -e;
        break;
      }
      keys.insert(keys.end(), kb.begin(), kb.begin() + n * ks);
      vals.insert(vals.end(), vb.begin(), vb.begin() + n * vs);
      count += n;
      if (err) {  // ENOENT: done
        err = 0;
        break;
      }
      in = out;
      first = false;
    }
    if (!err) batched = true;
    else if (err != -EINVAL && err != -ENOTSUP && err != -524) Throw(env, err, "map batch lookup");
    else { keys.clear(); vals.clear(); count = 0; }
  }
  if (!batched) {
    std::vector<uint8_t> cur(ks), next(ks), v(vs);
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : cur.data(), next.data()) == 0) {
      first = false;
      cur = next;
      if (bpf_map_lookup_elem(fd, cur.data(), v.data())) {
        if (errno == ENOENT) continue;
        Throw(env, errno, "map lookup");
      }
      keys.insert(keys.end(), cur.begin(), cur.end());
      vals.insert(vals.end(), v.begin(), v.end());
      count++;
    }
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("count", Napi::Number::New(env, count));
  r.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), keys.size()));
  r.Set("values", Napi::Buffer<uint8_t>::Copy(env, vals.data(), vals.size()));
  r.Set("batched", Napi::Boolean::New(env, batched));
  return r;
}

// mapBatch(fd, token: number | null, max) -> { count, keys, values, next: number | null }
// One page of a hash map: at most `max` entries from the bucket `token` on (null: from the start), by
// BPF_MAP_LOOKUP_BATCH. `next` is the bucket to continue from, null when the walk is complete. A bucket
// token (not a key) survives deletion of the entries already returned; get_next_key from a deleted key
// restarts at the first element. A single bucket holding more than `max` entries is returned whole.
Napi::Value MapBatch(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  bool first = info[1].IsNull() || info[1].IsUndefined();
  __u32 token = first ? 0 : U32(info[1]);
  __u32 max = U32(info[2]);
  if (max == 0) Throw(env, EINVAL, "map batch: max must be positive");
  struct bpf_map_info mi;
  size_t vs = ValueBytes(fd, &mi);
  if (!vs) Throw(env, errno, "map info");
  size_t ks = mi.key_size;
  // batch tokens are a u32 bucket index for hash maps; keep them key-sized (and at least 8 bytes)
  std::vector<uint8_t> in(std::max<size_t>(ks, 8)), out(std::max<size_t>(ks, 8));
  memcpy(in.data(), &token, sizeof(token));
  for (__u32 room = max;; room *= 2) {
    std::vector<uint8_t> kb(ks * room), vb(vs * room);
    __u32 n = room;
    LIBBPF_OPTS(bpf_map_batch_opts, bo);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : in.data(), out.data(), kb.data(), vb.data(), &n, &bo);
    int e = errno;
    if (err && e == ENOSPC && n == 0 && room < (1u << 20)) continue;  // one bucket holds more than room
    if (err && e != ENOENT) Throw(env, e, "map batch lookup");
    __u32 next;
    memcpy(&next, out.data(), sizeof(next));
    Napi::Object r = Napi::Object::New(env);
    r.Set("count", Napi::Number::New(env, n));
    r.Set("keys", Napi::Buffer<uint8_t>::Copy(env, kb.data(), n * ks));
    r.Set("values", Napi::Buffer<uint8_t>::Copy(env, vb.data(), n * vs));
    r.Set("next", err ? env.Null() : Napi::Number::New(env, next));
    return r;
  }
}

// ---- test run --------------------------------------------------------------

// progTestRun(fd, { data, repeat?, ctxIn?, flags?, batchSize?, dataOutSize? }) -> { retval, duration, dataOut, ctxOut }
Napi::Value ProgTestRun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = I32(info[0]);
  Napi::Object o = info[1].As<Napi::Object>();
  auto data = o.Get("data").As<Napi::Buffer<uint8_t>>();
  std::vector<uint8_t> out(o.Has("dataOutSize") ? U32(o.Get("dataOutSize")) : data.Length() + 256);
  std::vector<uint8_t> ctxOut;
  LIBBPF_OPTS(bpf_test_run_opts, t);
  t.data_in = data.Data();
  t.data_size_in = data.Length();
  t.data_out = out.data();
  t.data_size_out = out.size();
  if (o.Has("repeat")) t.repeat = U32(o.Get("repeat"));
  if (o.Has("flags")) t.flags = U32(o.Get("flags"));
  if (o.Has("batchSize")) t.batch_size = U32(o.Get("batchSize"));
  // live frames (the packets really leave through the device) take neither data_out nor ctx_out
  const bool live = t.flags & BPF_F_TEST_XDP_LIVE_FRAMES;
  if (live) {
    t.data_out = nullptr;
    t.data_size_out = 0;
  }
  if (o.Has("ctxIn")) {
    auto c = o.Get("ctxIn").As<Napi::Buffer<uint8_t>>();
    t.ctx_in = c.Data();
    t.ctx_size_in = c.Length();
    if (!live) {
      ctxOut.resize(c.Length());
      t.ctx_out = ctxOut.data();
      t.ctx_size_out = ctxOut.size();
    }
  }
  if (bpf_prog_test_run_opts(fd, &t)) Throw(env, errno, "BPF_PROG_TEST_RUN");
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", Napi::Number::New(env, t.retval));
  r.Set("duration", Napi::Number::New(env, t.duration));
  r.Set("dataOut", Napi::Buffer<uint8_t>::Copy(env, out.data(), std::min<size_t>(t.data_size_out, out.size())));
  if (!ctxOut.empty()) r.Set("ctxOut", Napi::Buffer<uint8_t>::Copy(env, ctxOut.data(), t.ctx_size_out));
  return r;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(LibbpfPrint);
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
#define E(name, fn) exports.Set(name, Napi::Function::New(env, fn, name));
  E("layout", Layout)
  E("loadObject", LoadObject)
  E("closeObject", CloseObject)
  E("closeFd", CloseFd)
  E("ensureBpffs", EnsureBpffs)
  E("objPin", ObjPin)
  E("objGet", ObjGet)
  E("unpin", Unpin)
  E("progInfo", ProgInfo)
  E("mapInfo", MapInfo)
  E("progGetFdById", ProgGetFdById)
  E("mapGetFdById", MapGetFdById)
  E("ifIndex", IfIndex)
  E("netnsEnter", NetnsEnter)
  E("netnsRestore", NetnsRestore)
  E("xdpAttach", XdpAttach)
  E("xdpReplace", XdpReplace)
  E("xdpDetach", XdpDetach)
  E("xdpQuery", XdpQuery)
  E("tcAttach", TcAttach)
  E("tcDetach", TcDetach)
  E("tcQuery", TcQuery)
  E("numPossibleCpus", NumPossibleCpus)
  E("mapLookup", MapLookup)
  E("mapUpdate", MapUpdate)
  E("mapDelete", MapDelete)
  E("mapDump", MapDump)
  E("mapBatch", MapBatch)
  E("progTestRun", ProgTestRun)
#undef E
  return exports;
}

}  // namespace

NODE_API_MODULE(ipvs_bpf, Init)
