# A shell script: run it with `source /extra_files/scripts/demo.sh`.
echo "Keel demo script"
mkdir -p /tmp/demo
echo "written by demo.sh" > /tmp/demo/note.txt
cat /tmp/demo/note.txt
ls -l /tmp/demo
df
