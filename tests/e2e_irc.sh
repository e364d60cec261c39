#!/usr/bin/env bash
# End to end: chat's IRC front-end with real IRC clients in one room with an
# nc user: irssi driven in tmux (plaintext; and a second irssi over irc_tls,
# the server certificate pinned), WeeChat headless run from a script of
# commands, and a bot built on Debian's python3-irc over TLS (the test CA
# verified). Each side checks what the other sees, in the form it expects.
# coserved is stopped with SIGTERM and judged (e2e_lib.sh). All on loopback;
# tmux runs on a private socket and is stopped through it.
# Usage: e2e_irc.sh PATH/TO/coserved
set -uo pipefail
coserved=$(readlink -f "${1:?usage: e2e_irc.sh PATH/TO/coserved}")
work=$(mktemp -d)
source "$(dirname "$0")/e2e_lib.sh"
pid=
pids=()
tmux_socket="coserve-e2e-irc-$$"
cleanup() {
  exec 3>&- 2>/dev/null
  tmux -L "$tmux_socket" kill-server 2>/dev/null
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# has FILE TEXT: FILE holds the fixed string TEXT.
has() { grep -q -F -- "$2" "$1" 2>/dev/null; }
# seen NAME FILE TEXT: a check that TEXT shows up in FILE within 15 s (irssi
# paces what it sends: about one line every 2 s after a burst).
seen() {
  poll_for 15 has "$2" "$3"
  check "$1" yes "$(has "$2" "$3" && echo yes || { echo "no; $2 has:"; tail -5 "$2"; })"
}
for tool in irssi weechat-headless tmux nc; do
  command -v "$tool" >/dev/null || { echo "e2e_irc: $tool is missing (scripts/install-deps installs it)"; exit 1; }
done
/usr/bin/python3 -c 'import irc.client' 2>/dev/null || { echo "e2e_irc: python3-irc is missing (scripts/install-deps)"; exit 1; }

make_test_certs "$work" || { echo "e2e_irc: could not make test certificates"; exit 1; }
printf 'Welcome to the e2e chat.\n' >"$work/motd"
cat >"$work/chat.ini" <<EOF
[chat]
tcp = 127.0.0.1:0
irc = 127.0.0.1:0
irc_tls = 127.0.0.1:0
tls_cert = server.pem
tls_key = server.key
irc_motd = motd
EOF
(cd / && exec "$coserved" --config "$work/chat.ini") >"$work/log" 2>&1 &
pid=$!
poll_for 20 has "$work/log" "service chat:" || { echo "coserved did not start:"; cat "$work/log"; exit 1; }
read -r tcp irc irc_tls < <(sed -n 's/.*tcp 127.0.0.1:\([0-9]*\); irc 127.0.0.1:\([0-9]*\); irc_tls 127.0.0.1:\([0-9]*\);.*/\1 \2 \3/p' "$work/log")
[[ -n $irc_tls ]] || { echo "no ports in the log:"; cat "$work/log"; exit 1; }

# ---- bob, with nc --------------------------------------------------------------
mkfifo "$work/bob.in"
nc 127.0.0.1 "$tcp" <"$work/bob.in" >"$work/bob.out" & pids+=($!)
exec 3>"$work/bob.in"
bob() { printf '%s\r\n' "$@" >&3; }
seen "nc: welcome" "$work/bob.out" "* welcome to #lobby"
bob "/nick bob" "said before anyone came"
seen "nc: named bob" "$work/bob.out" "* you are now known as bob"

# ---- ann, with irssi in tmux ------------------------------------------------------
irssi_home() {  # DIR NICK: a config that logs every window to DIR/logs
  mkdir -p "$1"
  cat >"$1/config" <<EOF
settings = {
  core = { real_name = "$2"; user_name = "$2"; nick = "$2"; };
  "fe-common/core" = { autolog = "yes"; autolog_path = "$1/logs/\$0.log"; };
};
EOF
}
irssi_home "$work/ann" ann
tmux -L "$tmux_socket" new-session -d -s ann -x 200 -y 50 "irssi --home=$work/ann -c 127.0.0.1 -p $irc"
ann() { tmux -L "$tmux_socket" send-keys -t ann "$1" Enter; }
screen() { tmux -L "$tmux_socket" capture-pane -p -t "$1" 2>/dev/null | grep -v '^$'; }
irssi_connected() { screen ann | grep -q -F "Welcome to the coserve IRC network, ann"; }
poll_for 15 irssi_connected
check "irssi: registered (CAP LS, then 001)" yes "$(irssi_connected && echo yes || { echo no; screen ann; })"
check "irssi: the MOTD shown" yes "$(screen ann | grep -q -F "Welcome to the e2e chat." && echo yes || echo no)"
ann "/join #lobby"
seen "nc sees ann join" "$work/bob.out" "* ann joined #lobby"
lobby=$work/ann/logs/#lobby.log
names_shown() { screen ann | grep -q -F "[ ann] [ bob]"; }
poll_for 15 names_shown
check "irssi: the names, bob among them" yes "$(names_shown && echo yes || { echo no; screen ann; })"
seen "irssi: history shown as the server's notices" "$lobby" "!coserve <bob> said before anyone came"
ann "hello from irssi"
seen "nc hears irssi" "$work/bob.out" "<ann> hello from irssi"
bob "hi ann"
seen "irssi hears nc" "$lobby" "< bob> hi ann"
ann "/me waves"
seen "irssi /me reaches nc as an action" "$work/bob.out" "* ann waves"
bob "/me bows"
seen "nc /me reaches irssi as an action" "$lobby" " * bob bows"
ann "/msg bob psst"
seen "irssi /msg reaches nc privately" "$work/bob.out" "<ann> (private) psst"
bob "/msg ann secret"
seen "nc /msg reaches irssi in a query window" "$work/ann/logs/bob.log" "<bob> secret"
bob "/topic tea at five"
seen "nc /topic shown by irssi" "$lobby" "bob changed the topic of #lobby to: tea at five"
ann "/nick anna"
seen "irssi /nick seen by nc" "$work/bob.out" "* ann is now known as anna"
bob "/nick robert"
seen "nc /nick seen by irssi" "$lobby" "bob is now known as robert"

# ---- cat, with irssi over TLS (the certificate pinned: irssi checks DNS names only) ----
irssi_home "$work/cat" cat
fingerprint=$(openssl x509 -noout -fingerprint -sha256 -in "$work/server.pem" | cut -d= -f2)
tmux -L "$tmux_socket" new-session -d -s cat -x 200 -y 50 "irssi --home=$work/cat"
cat_() { tmux -L "$tmux_socket" send-keys -t cat "$1" Enter; }
sleep 1
cat_ "/connect -tls -notls_verify -tls_pinned_cert $fingerprint 127.0.0.1 $irc_tls"
cat_tls() { screen cat | grep -q -F "Welcome to the coserve IRC network, cat"; }
poll_for 15 cat_tls
check "irssi over irc_tls: registered" yes "$(cat_tls && echo yes || { echo no; screen cat; })"
check "irssi over irc_tls: TLS 1.3" yes "$(screen cat | grep -q 'Protocol: TLSv1.3' && echo yes || echo no)"
cat_ "/join #lobby"
seen "nc sees cat (TLS) join" "$work/bob.out" "* cat joined #lobby"
seen "irssi (ann) sees cat join" "$lobby" "cat [cat@coserve] has joined #lobby"
cat_ "over tls"
seen "nc hears cat over TLS" "$work/bob.out" "<cat> over tls"
seen "irssi hears cat over TLS" "$lobby" "< cat> over tls"

# ---- the bot, on python3-irc over TLS ----------------------------------------------
cat >"$work/bot.py" <<'EOF'
import ssl, sys, irc.client, irc.connection
port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=ca)
factory = irc.connection.Factory(wrapper=lambda s: context.wrap_socket(s, server_hostname="127.0.0.1"))
reactor = irc.client.IRC()  # Debian 12's python3-irc 8.5: IRC, not Reactor
conn = reactor.server().connect("127.0.0.1", port, "bot", connect_factory=factory)
conn.add_global_handler("welcome", lambda c, e: c.join("#lobby"))
nick = lambda e: irc.client.NickMask(e.source).nick  # 8.5: the source is a string
def on_pubmsg(c, e):
    if e.arguments[0] == "!ping":
        c.privmsg("#lobby", "pong " + nick(e))
    elif e.arguments[0] == "!bye":
        c.quit("done")
        sys.exit(0)
conn.add_global_handler("pubmsg", on_pubmsg)
conn.add_global_handler("action", lambda c, e: c.privmsg(nick(e), "saw you " + e.arguments[0]))
reactor.process_forever(timeout=0.2)
EOF
timeout 60 /usr/bin/python3 "$work/bot.py" "$irc_tls" "$work/ca.pem" >"$work/bot.out" 2>&1 & bot=$!
pids+=("$bot")
seen "nc sees the bot join" "$work/bob.out" "* bot joined #lobby"
bob "!ping"
seen "the python3-irc bot answers nc" "$work/bob.out" "<bot> pong robert"
seen "irssi sees the bot's answer" "$lobby" "< bot> pong robert"
bob "/me dances"
seen "the bot gets nc's /me as a CTCP ACTION, answers privately" "$work/bob.out" "<bot> (private) saw you dances"
bob "!bye"
seen "the bot quits" "$work/bob.out" "* bot left (done)"
wait "$bot"
check "the bot exited cleanly" 0 "$?"

# ---- dora, with WeeChat headless, from a script of commands -------------------------
mkdir -p "$work/dora"
timeout 60 weechat-headless --dir "$work/dora" -r "/set logger.file.flush_delay 0;\
 /server add coserve 127.0.0.1/$irc -notls -nicks=dora -username=dora -realname=Dora -autojoin=#lobby;\
 /connect coserve; /wait 3 /msg -server coserve #lobby hello from weechat; /wait 6 /quit" \
  >/dev/null 2>&1 </dev/null & wee=$!
pids+=("$wee")
seen "nc sees WeeChat join" "$work/bob.out" "* dora joined #lobby"
weelog="$work/dora/logs/irc.coserve.#lobby.weechatlog"
seen "WeeChat: the topic on join" "$weelog" 'Topic for #lobby is "tea at five"'
seen "WeeChat: history as notices" "$weelog" "Notice(coserve): <ann> hello from irssi"
seen "nc hears WeeChat" "$work/bob.out" "<dora> hello from weechat"
bob "hi dora"
seen "WeeChat hears nc" "$weelog" "robert	hi dora"
seen "WeeChat quits" "$work/bob.out" "* dora left (WeeChat"
wait "$wee"

# ---- leaving ---------------------------------------------------------------------
ann "/part #lobby off to bed"
seen "irssi /part seen by nc with its reason" "$work/bob.out" "* anna left (off to bed)"
cat_ "/quit good night"
seen "irssi /quit seen by nc with its reason" "$work/bob.out" "* cat left (good night)"
bob "/quit"
seen "nc: bye" "$work/bob.out" "* bye"
check "no error in coserved's log" "" "$(grep -E ' (error|warning) ' "$work/log" | grep -v 'the certificate expires' | head -3)"
stop_judged coserved "$pid" "$work/log"
pid=
finish e2e_irc
