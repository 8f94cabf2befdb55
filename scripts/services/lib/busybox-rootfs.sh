# Sourced by scripts/services/*.sh (this directory is not run by scripts/test.sh).
# build_busybox_rootfs DIR: a minimal root file system in DIR (created afresh) from the host's
# static /bin/busybox: every applet, root and nobody users, world-writable /tmp and /var/tmp.
# Test images are built from it without any registry.
build_busybox_rootfs() {
    local dir=$1 applet
    rm -rf "$dir"
    mkdir -p "$dir"/{bin,etc,tmp,var/tmp,proc,sys,dev,root,home}
    cp /bin/busybox "$dir/bin/busybox"
    for applet in $("$dir/bin/busybox" --list); do
        [[ "$applet" == busybox ]] || ln -sf busybox "$dir/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > "$dir/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
    chmod 1777 "$dir/tmp" "$dir/var/tmp"
}
