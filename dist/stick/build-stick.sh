#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the clone stick: a bootable Debian 12 image (BIOS and UEFI, GRUB) with
# the kernel, systemd and this tree's cloned package (debian/, built with
# dpkg-buildpackage by dist/deb/build-deb.sh) installed by dpkg, the unit
# enabled, and a small FAT partition labelled CLONECFG mounted at /etc/cloned
# for the pairing material (cloned.toml, pair.secret).
#
# Usage (as root, on Debian 12):
#   dist/stick/build-stick.sh [--deb FILE] [--out FILE] [--size-mib N] [--mirror URL]
#                             [--extra-packages P1,P2] [--cache DIR] [--root-password-file FILE]
#     --deb     the cloned .deb to install (default: build it now with dist/deb/build-deb.sh)
#     --out     the image file to write (build/clone-stick.img); never a device
#     --size-mib  image size (2048)
#     --mirror  Debian mirror (default: CLONED_STICK_MIRROR, else the one apt uses here,
#               from /etc/apt/sources.list*; without either it stops and says so)
#     --extra-packages  more Debian packages for the image (the VM test adds smartmontools)
#     --cache   keep the Debian system (everything but the .deb) in DIR/base-KEY.img and
#               the finished image in DIR/stick-KEY.img, KEY a hash of their inputs; a
#               later run with the same inputs copies them instead of building again
#     --root-password-file FILE  root's password on the stick (first line); without it
#               root is locked and the stick has no login
# Then write it to a stick: dd if=build/clone-stick.img of=/dev/sdX bs=4M conv=fsync
# (check sdX twice: dd overwrites whatever disk you name).
#
# Two layers: the base (partitions, debootstrap of Debian 12 with the packages
# the .deb depends on, GRUB, the stick's settings) takes minutes; installing
# the .deb into a copy of it takes seconds. The base's key is a hash of this
# recipe's files, the size, and the package list (the .deb's Depends, which
# dpkg-shlibdeps derived from the libraries cloned links); the image's key adds
# the .deb's hash.
#
# Partitions (GPT): 1 BIOS boot (1 MiB), 2 EFI system "CLONEEFI" (64 MiB, FAT32),
# 3 "CLONECFG" (32 MiB, FAT: writable from the original's side whatever its OS),
# 4 root "CLONEROOT" (ext4, the rest).
#
# It writes only to image files, through loop devices it attaches and
# always detaches (also on failure).
set -euo pipefail
# mtools: loop devices have no disk geometry to check.
export MTOOLS_SKIP_CHECK=1
cd "$(dirname "$0")/../.."

deb=""
out=build/clone-stick.img
size_mib=2048
mirror=""
extra_packages=""
cache=""
root_password_file=""
while (($#)); do
  case "$1" in
    --deb) deb="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --size-mib) size_mib="$2"; shift 2 ;;
    --mirror) mirror="$2"; shift 2 ;;
    --extra-packages) extra_packages="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    --root-password-file) root_password_file="$2"; shift 2 ;;
    *) echo "build-stick: unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done

die() { echo "build-stick: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, loop devices, mounts)."
for tool in debootstrap sfdisk partx losetup mkfs.vfat mkfs.ext4 mcopy mmd grub-mkimage dpkg-deb \
  /usr/lib/grub/i386-pc/grub-bios-setup; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh --stick"
done
[ -d /usr/lib/grub/i386-pc ] || die "GRUB's BIOS modules are missing: apt-get install grub-pc-bin"
[ -d /usr/lib/grub/x86_64-efi ] || die "GRUB's EFI modules are missing: apt-get install grub-efi-amd64-bin"
[ -e "$out" ] && [ ! -f "$out" ] && die "$out exists and is not a regular file; refusing to write to it."
if [ -z "$deb" ]; then
  deb=$(dist/deb/build-deb.sh | tail -n1) || die "could not build the cloned package (dist/deb/build-deb.sh)"
fi
[ -f "$deb" ] && [ "$(dpkg-deb -f "$deb" Package)" = cloned ] || die "$deb is not the cloned package"

# The mirror apt uses here (deb822 sources first, then sources.list), or
# --mirror / CLONED_STICK_MIRROR; no address is written in the tree.
[ -n "$mirror" ] || mirror=${CLONED_STICK_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || die "no Debian mirror: none in this machine's apt sources; pass --mirror URL or set CLONED_STICK_MIRROR"
fi

# What the package needs, as dpkg-buildpackage wrote it (${shlibs:Depends}:
# the packages of the libraries cloned links, whatever directory dpkg knows
# their files under): "libc6 (>= 2.34), libnl-3-200 (>= 3.2.7) | x" -> names.
deb_depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/ //g' |
  grep -v '^$' | sort -u | paste -sd, -)
packages="systemd,systemd-sysv,udev,dbus,kmod,linux-image-amd64,initramfs-tools,e2fsprogs,dosfstools,iproute2,ethtool"
packages="$packages,$deb_depends${extra_packages:+,$extra_packages}"
recipe_files=(dist/stick/build-stick.sh dist/stick/README-CLONECFG.txt dist/stick/cloned-stick.conf
  dist/stick/20-wired.network dist/stick/wait-online.conf)
base_key=$( { sha256sum "${recipe_files[@]}" | cut -d' ' -f1; echo "size=$size_mib packages=$packages"; } |
  sha256sum | cut -c1-16)
image_key=$( { echo "$base_key"; sha256sum <"$deb"; [ -z "$root_password_file" ] || sha256sum <"$root_password_file"; } |
  sha256sum | cut -c1-16)

start_s=$(date +%s)
work=$(mktemp -d /var/tmp/clone-stick.XXXXXX)
mnt="$work/root"
mkdir -p "$mnt"
loops=()
declare -A part
loop=""
detach_all() {
  local m l
  for m in "$mnt/boot/efi" "$mnt/etc/cloned" "$mnt/dev/pts" "$mnt/dev" "$mnt/proc" "$mnt/sys" "$mnt"; do
    mountpoint -q "$m" && umount "$m"
  done
  for l in "${loops[@]}"; do losetup -d "$l"; done
  loops=()
  part=()
  loop=""
}
cleanup() {
  set +e
  detach_all
  rm -rf "$work"
}
trap cleanup EXIT

# One loop device for the whole image (GRUB's BIOS stage) and one per
# partition, by offset: kernels in containers often give loop devices no
# partition nodes.
attach() {  # IMAGE [--offset BYTES --sizelimit BYTES]
  local image=$1 l
  shift
  l=$(losetup --find --show "$@" "$image") || die "cannot attach a loop device to $image"
  loops+=("$l")
  echo "$l"
}
attach_image() {  # IMAGE: sets loop and part[1..4]
  local nr start sectors
  loop=$(attach "$1")
  loops+=("$loop")
  while read -r nr start sectors; do
    part[$nr]=$(attach "$1" --offset $((start * 512)) --sizelimit $((sectors * 512)))
    loops+=("${part[$nr]}")
  done < <(partx -g -o NR,START,SECTORS "$1")
  [ "${#part[@]}" -eq 4 ] || die "expected 4 partitions in $1, found ${#part[@]}"
}

# The base: Debian 12 with everything but the cloned package.
build_base() {  # IMAGE
  local image=$1
  echo "build-stick: the base system ${size_mib} MiB, Debian 12 from $mirror"
  truncate -s "${size_mib}M" "$image"
  sfdisk --quiet "$image" <<'EOF'
label: gpt
size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name="bios"
size=64MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="CLONEEFI"
size=32MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="CLONECFG"
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="CLONEROOT"
EOF
  attach_image "$image"
  mkfs.vfat -F 32 -n CLONEEFI "${part[2]}" >/dev/null
  mkfs.vfat -n CLONECFG "${part[3]}" >/dev/null
  mkfs.ext4 -q -L CLONEROOT "${part[4]}"
  mount "${part[4]}" "$mnt"
  echo "build-stick: debootstrap (the longest step) of $packages"
  debootstrap --variant=minbase --include="$packages" bookworm "$mnt" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

  # The FAT partitions are written with mtools, not mounted: the build machine's
  # kernel may have no vfat (containers often do not).
  mkdir -p "$mnt/boot/efi" "$mnt/etc/cloned"
  mcopy -o -i "${part[3]}" dist/stick/README-CLONECFG.txt ::README.txt
  install -D -m 0644 dist/stick/cloned-stick.conf "$mnt/etc/systemd/system/cloned.service.d/stick.conf"
  install -D -m 0644 dist/stick/20-wired.network "$mnt/etc/systemd/network/20-wired.network"
  install -D -m 0644 dist/stick/wait-online.conf \
    "$mnt/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf"
  cat >"$mnt/etc/fstab" <<'EOF'
# The clone stick. The internal disk is the mirror: nothing here mounts it.
LABEL=CLONEROOT  /            ext4  defaults,noatime                      0 1
LABEL=CLONEEFI   /boot/efi    vfat  umask=0077,nofail                     0 2
# Pairing material: files read as root-only 0600 (cloned refuses a looser secret).
LABEL=CLONECFG   /etc/cloned  vfat  fmask=0177,dmask=0077,nosuid,nodev,noexec  0 2
EOF
  echo clone >"$mnt/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 clone\n' >"$mnt/etc/hosts"
  : >"$mnt/etc/machine-id"   # generated on first boot
  echo "deb $mirror bookworm main" >"$mnt/etc/apt/sources.list"
  systemctl --root="$mnt" enable systemd-networkd.service >/dev/null 2>&1
  install_grub
  [ -e "$mnt/vmlinuz" ] && [ -e "$mnt/initrd.img" ] || die "the kernel or its initramfs is missing in the image"
  chroot "$mnt" apt-get clean
  rm -rf "$mnt/var/lib/apt/lists/"*
  fstrim "$mnt" 2>/dev/null || true   # hands freed blocks back as holes in the image file
  detach_all
}

# GRUB for BIOS (core image in the BIOS boot partition) and UEFI (the removable
# path EFI/BOOT/BOOTX64.EFI). Both core images find the root file system by its
# label and read grub.cfg and their modules from /boot/grub on it.
install_grub() {
  mkdir -p "$work/grub" "$mnt/boot/grub"
  printf '%s\n' 'search --no-floppy --label CLONEROOT --set=root' 'set prefix=($root)/boot/grub' >"$work/grub/early.cfg"
  local grub_modules="part_gpt part_msdos ext2 fat search search_label normal linux configfile echo test all_video gzio"
  cp -r /usr/lib/grub/i386-pc /usr/lib/grub/x86_64-efi "$mnt/boot/grub/"
  grub-mkimage -O i386-pc -o "$mnt/boot/grub/i386-pc/core.img" -c "$work/grub/early.cfg" -p /boot/grub \
    biosdisk $grub_modules || die "grub-mkimage (BIOS) failed"
  # grub-bios-setup embeds core.img in the BIOS boot partition and points the
  # MBR's boot.img at it. It must find the disk holding --directory among the
  # devices it knows: map the image and its root partition.
  printf '(hd0) %s\n(hd1) %s\n' "$loop" "${part[4]}" >"$work/grub/device.map"
  /usr/lib/grub/i386-pc/grub-bios-setup --directory="$mnt/boot/grub/i386-pc" --device-map="$work/grub/device.map" \
    "$loop" 2>"$work/grub.log" || { cat "$work/grub.log" >&2; die "grub-bios-setup failed"; }
  grub-mkimage -O x86_64-efi -o "$work/grub/BOOTX64.EFI" -c "$work/grub/early.cfg" -p /boot/grub \
    $grub_modules || die "grub-mkimage (EFI) failed"
  mmd -i "${part[2]}" ::/EFI ::/EFI/BOOT
  mcopy -i "${part[2]}" "$work/grub/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
  cat >"$mnt/boot/grub/grub.cfg" <<'EOF'
# The clone stick. /vmlinuz and /initrd.img follow the installed kernel.
set timeout=1
insmod part_gpt
insmod ext2
search --no-floppy --label CLONEROOT --set=root
menuentry "Clone stick (cloned)" {
  linux /vmlinuz root=LABEL=CLONEROOT ro console=tty0 console=ttyS0,115200
  initrd /initrd.img
}
EOF
}

# The cloned package, installed by dpkg: it fails if the base lacks a package
# it depends on, and the ldd check below proves the libraries resolve.
install_deb() {  # IMAGE
  attach_image "$1"
  mount "${part[4]}" "$mnt"
  cp "$deb" "$mnt/tmp/cloned.deb"
  chroot "$mnt" dpkg -i /tmp/cloned.deb >"$work/dpkg.log" 2>&1 ||
    { cat "$work/dpkg.log" >&2; die "dpkg could not install $(basename "$deb") in the image"; }
  rm -f "$mnt/tmp/cloned.deb"
  if [ -n "$root_password_file" ]; then
    printf 'root:%s\n' "$(head -n1 "$root_password_file")" | chroot "$mnt" chpasswd || die "cannot set root's password"
  fi
  systemctl --root="$mnt" enable cloned.service >/dev/null 2>&1
  systemctl --root="$mnt" is-enabled cloned.service >/dev/null || die "cloned.service is not enabled in the image"
  local bin
  for bin in /usr/sbin/cloned /usr/bin/clonectl; do
    chroot "$mnt" ldd "$bin" | grep -q "not found" && die "$bin lacks a library in the image: $(chroot "$mnt" ldd "$bin" | grep 'not found')"
  done
  used_mib=$(df -m --output=used "$mnt" | tail -1 | tr -d ' ')
  detach_all
}

mkdir -p "$(dirname "$out")"
rm -f "$out"
if [ -n "$cache" ]; then
  mkdir -p "$cache"
  # One build at a time per cache (the VM test and a developer may share it).
  exec 8>"$cache/lock"
  flock -w 3600 8 || die "another build holds $cache/lock for more than an hour"
  if [ -f "$cache/stick-$image_key.img" ]; then
    cp --sparse=always "$cache/stick-$image_key.img" "$out"
    echo "build-stick: reused $cache/stick-$image_key.img (the same recipe, packages and .deb): $out"
    exit 0
  fi
  if [ -f "$cache/base-$base_key.img" ]; then
    echo "build-stick: reusing the base system $cache/base-$base_key.img"
  else
    build_base "$work/base.img"
    # Keep this base and the newest other one; older ones go.
    { ls -t "$cache"/base-*.img 2>/dev/null || true; } | tail -n +2 | xargs -r rm -f
    mv "$work/base.img" "$cache/base-$base_key.img"
  fi
  cp --sparse=always "$cache/base-$base_key.img" "$out"
else
  build_base "$out"
fi
install_deb "$out"
if [ -n "$cache" ]; then
  { ls -t "$cache"/stick-*.img 2>/dev/null || true; } | tail -n +2 | xargs -r rm -f
  cp --sparse=always "$out" "$cache/stick-$image_key.img"
fi
cleanup
trap - EXIT
end_s=$(date +%s)
echo "build-stick: done in $((end_s - start_s)) s: $out, ${size_mib} MiB image, ${used_mib} MiB used on the root file system, $(du -m "$out" | cut -f1) MiB allocated"
